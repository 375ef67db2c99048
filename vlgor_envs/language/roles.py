"""Instruction features that name each role outright: a parser learned from labelled wordings.

A policy trained by behaviour cloning has to find "which ball is the target, where should it
go, relative to which ball" in its instruction feature. From MiniLM's colour slots it
learns that slowly (CLEVR pixel BC: 44% closed-loop success on train goals against 84% when
the roles are given as one-hots). :class:`RoleEncoder` does that step once, with
supervision: one logistic-regression probe per role, fitted on labelled instructions (for
CLEVR, the train split's wordings and their goals, nothing held out), turns the instruction
into the probability of each choice of each role. Given these 14 numbers instead of the
slots, the same pixel BC succeeds on 97% of held-out train-goal episodes.

Appending the sentence embedding (to say what the roles do not, such as a motion's "toward
the left") was measured and dropped: it let the learner fit wordings and cut that to 56%.
An instruction no role covers still gets a distinct feature (a motion's anchor probe
points at its only colour, the target, which no relation goal does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from vlgor_envs.language.encoder import InstructionEncoder


class RoleEncoder:
    """Per-role choice probabilities, read from an instruction feature by linear probes.

    Args:
        roles: Each role's name and its choices, in the order the feature lists them.
        examples: Labelled instructions: text, and the choice of every role for it.
        reader: The feature the probes read (e.g. :class:`KeywordSlotEncoder`).

    Fitting is deterministic (L-BFGS from zeros), so two encoders built from the same
    examples give the same features.
    """

    def __init__(
        self,
        roles: Mapping[str, Sequence[str]],
        examples: Sequence[tuple[str, Mapping[str, str]]],
        reader: InstructionEncoder,
    ) -> None:
        from sklearn.linear_model import LogisticRegression

        if not roles or not examples:
            raise ValueError("a RoleEncoder needs at least one role and one labelled instruction")
        self.roles = {name: tuple(choices) for name, choices in roles.items()}
        self.reader = reader
        inputs = np.stack([reader.encode(text) for text, _ in examples])
        self._probes = {}
        for role, choices in self.roles.items():
            labels = [labels[role] for _, labels in examples]
            unknown = sorted(set(labels) - set(choices))
            if unknown:
                raise ValueError(f"role {role!r}: labels {unknown} are not among its choices {choices}")
            self._probes[role] = LogisticRegression(max_iter=3000).fit(inputs, labels)
        self._cache: dict[str, npt.NDArray[np.float32]] = {}

    @property
    def dim(self) -> int:
        """One probability per choice of every role."""
        return sum(len(choices) for choices in self.roles.values())

    def parse(self, text: str) -> dict[str, str]:
        """The most likely choice of each role."""
        probabilities = self._probabilities(text)
        return {role: choices[int(np.argmax(probabilities[role]))] for role, choices in self.roles.items()}

    def encode(self, texts: str | Sequence[str]) -> npt.NDArray[np.float32]:
        """Features of one text ``(dim,)`` or of a sequence of texts ``(n, dim)``."""
        if isinstance(texts, str):
            cached = self._cache.get(texts)
            if cached is None:
                parts = list(self._probabilities(texts).values())
                cached = self._cache[texts] = np.concatenate(parts).astype(np.float32)
            return cached.copy()
        return (
            np.stack([self.encode(text) for text in texts]) if texts else np.zeros((0, self.dim), np.float32)
        )

    def _probabilities(self, text: str) -> dict[str, npt.NDArray[np.float64]]:
        features = self.reader.encode(text)[None]
        out = {}
        for role, choices in self.roles.items():
            probe = self._probes[role]
            fitted = dict(zip(probe.classes_, probe.predict_proba(features)[0], strict=True))
            # Choices the examples never used get probability 0, so positions stay fixed.
            out[role] = np.array([fitted.get(choice, 0.0) for choice in choices])
        return out

    def __repr__(self) -> str:
        return f"RoleEncoder(roles={list(self.roles)}, dim={self.dim})"
