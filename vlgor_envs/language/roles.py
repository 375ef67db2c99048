"""Instruction features that name each role outright: a parser learned from labelled wordings.

A policy trained by behaviour cloning has to find "which ball is the target, where should it
go, relative to which ball" in its instruction feature. From MiniLM's colour slots it
learns that slowly (CLEVR pixel BC: 44% closed-loop success on train goals against 84% when
the roles are given as one-hots). :class:`RoleEncoder` does that step once, with
supervision: one logistic-regression probe per role, fitted on labelled instructions (for
CLEVR, the instructions and goals of the learner's own datasets), turns the instruction
into the probability of each choice of each role. Given the train split's 14 numbers
(target, relation, anchor) instead of the slots, the same pixel BC succeeds on 97% of
held-out train-goal episodes.

Appending the sentence embedding (to say what the roles do not) was measured and dropped:
it let the learner fit wordings and cut that to 56%. Roles the examples never vary, and
choices they never make, are left out of the feature: kept (50 numbers, 36 of them constant
on train-only data), BC reached 40% of CLEVR's train goals in a one-seed pilot, against 64%
for the same seed with the 14 varying ones. :meth:`RoleEncoder.parse` still names them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

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
        if not roles or not examples:
            raise ValueError("a RoleEncoder needs at least one role and one labelled instruction")
        self.roles = {name: tuple(choices) for name, choices in roles.items()}
        self.reader = reader
        self.digest = hashlib.sha256(json.dumps([[t, dict(lab)] for t, lab in examples]).encode()).hexdigest()
        inputs = np.stack([reader.encode(text) for text, _ in examples])
        self._probes = {
            role: self._fit(role, [lab[role] for _, lab in examples], inputs) for role in self.roles
        }
        # What each number of the feature is: (role, choice) for every choice the examples use,
        # of every role they vary. Constants tell a learner nothing and (measured) slow its
        # learning of the rest, so they are left out.
        self.columns: tuple[tuple[str, str], ...] = tuple(
            (role, choice)
            for role, probe in self._probes.items()
            if not isinstance(probe, str)
            for choice in self.roles[role]
            if choice in probe.classes_
        )
        self._cache: dict[str, npt.NDArray[np.float32]] = {}

    def _fit(self, role: str, labels: list[str], inputs: npt.NDArray[np.float32]) -> Any:
        """A probe of ``role``; a role whose examples all make one choice is that choice."""
        from sklearn.linear_model import LogisticRegression

        choices = self.roles[role]
        unknown = sorted(set(labels) - set(choices))
        if unknown:
            raise ValueError(f"role {role!r}: labels {unknown} are not among its choices {choices}")
        if len(set(labels)) == 1:
            return labels[0]
        # One BLAS thread: with more, the sums' order and so the last bits of the fit vary.
        with threadpool_limits(limits=1, user_api="blas"):
            return LogisticRegression(max_iter=3000).fit(inputs, labels)

    @property
    def dim(self) -> int:
        """One probability per column."""
        return len(self.columns)

    def parse(self, text: str) -> dict[str, str]:
        """The most likely choice of each role."""
        chances = self._probabilities(text)
        return {role: max(chances[role], key=chances[role].__getitem__) for role in chances}

    def encode(self, texts: str | Sequence[str]) -> npt.NDArray[np.float32]:
        """Features of one text ``(dim,)`` or of a sequence of texts ``(n, dim)``."""
        if isinstance(texts, str):
            cached = self._cache.get(texts)
            if cached is None:
                probabilities = self._probabilities(texts)
                cached = np.array([probabilities[role][choice] for role, choice in self.columns], np.float32)
                self._cache[texts] = cached
            return cached.copy()
        return (
            np.stack([self.encode(text) for text in texts]) if texts else np.zeros((0, self.dim), np.float32)
        )

    def _probabilities(self, text: str) -> dict[str, dict[str, float]]:
        features = self.reader.encode(text)[None]
        out = {}
        for role, probe in self._probes.items():
            if isinstance(probe, str):
                out[role] = {probe: 1.0}
                continue
            with threadpool_limits(limits=1, user_api="blas"):
                probabilities = probe.predict_proba(features)[0]
            out[role] = {str(c): float(p) for c, p in zip(probe.classes_, probabilities, strict=True)}
        return out

    def __repr__(self) -> str:
        varied = list(dict.fromkeys(role for role, _ in self.columns))
        return f"RoleEncoder(roles={varied}, dim={self.dim}, examples={self.digest[:12]})"
