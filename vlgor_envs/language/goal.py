"""Structured goals ``G = <t, m, b>`` and the templates that render them to text.

A :class:`Goal` is the paper's triple: a wording template ``t``, a manipulation target
``m`` and a behaviour pattern ``b``. The environment decides success from the goal, never
from the text, so every wording of every split stays checkable. A :class:`Template` is a
format string with named slots; it renders a goal to text and parses text back with a regex
compiled from the same string, so rendering and parsing cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Characters an instruction may hold: printable ASCII without tabs or newlines.
INSTRUCTION_CHARSET = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")
#: Longest instruction an observation can carry.
MAX_INSTRUCTION_LENGTH = 256


@dataclass(frozen=True, order=True)
class Goal:
    """A goal ``<t, m, b>``: template id, manipulation target, behaviour pattern.

    All three are plain strings so goals are hashable, sortable and JSON-serialisable.
    The environment's language module defines their grammar; for CLEVR-Robot, e.g.
    ``Goal("train-0", "red", "left_of:blue")`` reads "move the red ball to the left of
    the blue ball".
    """

    template: str
    target: str
    behavior: str

    def to_json(self) -> str:
        """Serialise to a JSON object string (stored with every dataset episode)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Goal:
        """Inverse of :meth:`to_json`."""
        fields = json.loads(text)
        return cls(template=fields["template"], target=fields["target"], behavior=fields["behavior"])

    @property
    def wording(self) -> str:
        """The wording set of the template (``"train"`` for ``"train-3"``)."""
        return self.template.rsplit("-", 1)[0]

    @property
    def template_index(self) -> int:
        """The index of the template within its wording set."""
        return int(self.template.rsplit("-", 1)[1])

    def with_template(self, template: str) -> Goal:
        """The same task (target and behaviour) in another wording."""
        return dataclasses.replace(self, template=template)


def normalize_instruction(text: str) -> str:
    """Lower-case, collapse white space and drop trailing punctuation."""
    return " ".join(text.lower().split()).rstrip(".!?").strip()


_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Template:
    """A format string such as ``"move the {target} ball {relation} the {anchor} ball"``.

    ``vocab`` maps a slot name to the phrase used for each value of that slot (for
    instance ``relation -> {"left_of": "to the left of", ...}``); slots without a vocabulary
    take a single word (colours), which the environment's language module validates.
    """

    text: str
    vocab: Mapping[str, Mapping[str, str]]

    def render(self, slots: Mapping[str, str]) -> str:
        """Fill the slots; vocabulary slots take their phrase."""
        phrases = {
            name: self.vocab[_vocab_key(name)][value] if _vocab_key(name) in self.vocab else value
            for name, value in slots.items()
        }
        return self.text.format(**phrases)

    def match(self, text: str) -> dict[str, str] | None:
        """Slot values of a normalised instruction, or ``None`` if it is not this template."""
        found = self._regex.fullmatch(text)
        if found is None:
            return None
        values: dict[str, str] = {}
        for name, phrase in found.groupdict().items():
            key = _vocab_key(name)
            values[name] = self._inverse[key][phrase] if key in self.vocab else phrase
        return values

    @functools.cached_property
    def _regex(self) -> re.Pattern[str]:
        return re.compile(self._pattern())

    @functools.cached_property
    def _inverse(self) -> dict[str, dict[str, str]]:
        return {key: {phrase: value for value, phrase in words.items()} for key, words in self.vocab.items()}

    def _pattern(self) -> str:
        parts: list[str] = []
        position = 0
        for slot in _SLOT.finditer(self.text):
            parts.append(re.escape(self.text[position : slot.start()]))
            name = slot.group(1)
            key = _vocab_key(name)
            if key in self.vocab:
                phrases = sorted(self.vocab[key].values(), key=len, reverse=True)
                alternatives = "|".join(re.escape(phrase) for phrase in phrases)
                parts.append(f"(?P<{name}>{alternatives})")
            else:
                parts.append(rf"(?P<{name}>[a-z]+)")
            position = slot.end()
        parts.append(re.escape(self.text[position:]))
        return "".join(parts)


def _vocab_key(slot_name: str) -> str:
    """Numbered slots share a vocabulary: ``relation2`` uses ``relation``'s phrases."""
    return slot_name.rstrip("0123456789")


def check_choice(kind: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` naming both."""
    if value not in choices:
        raise ValueError(f"unknown {kind} {value!r}: expected one of {', '.join(map(repr, choices))}")
    return value
