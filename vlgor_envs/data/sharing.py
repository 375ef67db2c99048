"""What a vlgor dataset says about itself, for people who load it without vlgor.

Minari shares datasets by namespace (``minari upload``, ``minari download``, with
``MINARI_REMOTE`` naming a Hugging Face or Google Cloud remote). Every dataset this package
writes lives in the ``vlgor`` namespace, or under it in ``vlgor/<env>``; those namespaces carry
the metadata :func:`namespace_metadata` gives, and every dataset carries :func:`format_metadata`
under ``metadata["vlgor_format"]`` beside its own record under ``metadata["vlgor"]``, so that
``minari.load_dataset`` alone explains what is stored.
"""

from __future__ import annotations

from typing import Any

from vlgor_envs import registry

PAPER = "VLGOR: visual-language knowledge guided offline RL, arXiv:2603.22892"
ROOT_NAMESPACE = "vlgor"
#: Where every dataset's :func:`format_metadata` is stored in its Minari metadata.
FORMAT_KEY = "vlgor_format"
#: Each language split's role, as every env's splits are built.
SPLITS = {
    "train": "the goals and wordings the data and the imagination model are trained on",
    "rephrasing": "the train goals in wordings never trained on",
    "counterfactual": "goals never trained on, each one edit (target object or behaviour) of a train goal",
    "hard": "compositions of several train-like goals",
}
#: The JSON schema of a goal as episode metadata stores it (``Goal.to_json``).
GOAL_SCHEMA = {
    "type": "object",
    "properties": {
        "template": {"type": "string", "description": "wording set and template index, e.g. 'train-3'"},
        "target": {
            "type": "string",
            "description": "what is moved: a ball colour (list, or 'all'), an object",
        },
        "behavior": {"type": "string", "description": "what to do with it, e.g. 'left_of:blue', 'open'"},
    },
    "required": ["template", "target", "behavior"],
    "additionalProperties": False,
}


def namespace_metadata(namespace: str) -> dict[str, Any]:
    """The metadata of a vlgor namespace (``vlgor`` or ``vlgor/<env>``); ``{}`` for any other."""
    envs = {
        name: {"env_id": entry.env_id, "imagined_env_id": entry.imagined_env_id, "actions": entry.action_kind}
        for name, entry in registry.ENTRIES.items()
    }
    if namespace == ROOT_NAMESPACE:
        return {
            "description": "Real and imagined rollouts of language-goal MuJoCo envs (CLEVR-Robot, "
            "Meta-World), with instructions in four splits, for offline RL: " + PAPER + ".",
            "paper": PAPER,
            "splits": SPLITS,
            "envs": envs,
        }
    env = namespace.removeprefix(f"{ROOT_NAMESPACE}/")
    if env in envs:
        return {
            "description": f"Rollouts of {envs[env]['env_id']}: real ones by its scripted expert, and ones "
            f"imagined by a world model ({envs[env]['imagined_env_id']}).",
            "paper": PAPER,
            "splits": SPLITS,
            **envs[env],
        }
    return {}


def format_metadata(env: str, imagined: bool) -> dict[str, Any]:
    """How the episodes of a dataset of ``env`` are stored, for readers without vlgor."""
    entry = registry.entry(env)
    episode = {
        "instruction": "the instruction text of the episode",
        "split": "the language split its goal comes from (see the namespace's `splits`)",
        "goal": "the goal as a JSON string (`goal_schema`)",
        "seed": "the env's reset seed (Minari's own field)",
        "success": "whether the goal held when the episode ended"
        + (" (on the imagined outcome)" if imagined else ""),
    }
    infos = {"object_state": f"float32, the env's `{entry.object_state_info}` (flattened), per step"}
    if imagined:
        episode |= {
            "edit": "'target', 'behavior' or 'none': how a train goal was edited into this one",
            "source_goal": "the train goal that was edited (JSON; null without an edit)",
            "rollout": "the rollout's index k (its imagined env was reset with seed + k)",
        }
        infos = {"is_success": "whether the goal holds on each imagined frame"}
    return {
        "paper": PAPER,
        "env_id": entry.env_id,
        "imagined_by": entry.imagined_env_id if imagined else None,
        "observations": {
            "image": "uint8 RGB frame (H, W, 3) of the env's camera, stored losslessly",
            "instruction": "the instruction text (a Gymnasium Text space), the same in every step",
        },
        "infos": infos,
        "episode_metadata": episode,
        "goal_schema": GOAL_SCHEMA,
        "load": "minari.load_dataset(id); episode metadata: dataset.storage.get_episode_metadata([i])",
    }
