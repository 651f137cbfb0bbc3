"""The configuration reference, generated from the traitlets classes.

:func:`render` returns MyST Markdown: one section per configurable class, one entry per
``config=True`` trait with its type, default and help. Traits a class inherits from
traitlets itself (``Application.log_level`` and the like) are listed briefly at the end
of the class's section.
"""

from __future__ import annotations

import inspect
import re

from traitlets import Bool, Dict, Enum, Float, Int, List, Type, Unicode
from traitlets.config import Application, Configurable

#: The classes documented, in page order.
CLASSES = (
    "gpuhub.service.app:GpuhubService",
    "gpuhub.service.reclaim:Reclaimer",
    "gpuhub.inventory:SimulatedInventory",
    "gpuhub.inventory:NvmlInventory",
    "gpuhub.inventory:FileInventory",
    "gpuhub.inventory.slurm:SlurmInventory",
    "gpuhub.spawners.mixin:GPUSpawnerMixin",
    "gpuhub.spawners.docker:GPUDockerSpawner",
    "gpuhub.spawners.local:GPULocalProcessSpawner",
    "gpuhub.spawners.slurm:GPUSlurmSpawner",
    "gpuhub.jobs.manager:JobManager",
    "gpuhub.jobs.local:LocalProcessExecutor",
    "gpuhub.jobs.docker:DockerExecutor",
    "gpuhub.jobs.slurm:SlurmExecutor",
    "jupyter_gpuhub.app:GpuhubExtension",
)

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_TYPE_NAMES = (
    (Bool, "bool"),
    (Int, "int"),
    (Float, "float"),
    (Enum, "one of"),
    (Unicode, "str"),
    (Dict, "dict"),
    (List, "list"),
    (Type, "class"),
)


def load_classes() -> list[type[Configurable]]:
    """Import the documented classes."""
    classes = []
    for spec in CLASSES:
        module, _, name = spec.partition(":")
        classes.append(getattr(__import__(module, fromlist=[name]), name))
    return classes


def config_traits(cls: type[Configurable]) -> dict[str, object]:
    """Every configurable trait of ``cls``, by name (inherited ones included)."""
    return dict(sorted(cls.class_traits(config=True).items()))


def is_own(trait) -> bool:
    """Whether gpuhub defines the trait (as opposed to traitlets' own ``Application``)."""
    return trait.this_class.__module__.startswith(("gpuhub", "jupyter_gpuhub"))


def type_name(trait) -> str:
    """A short type for people: ``str``, ``dict``, ``list of str``, ``class``."""
    for klass, name in _TYPE_NAMES:
        if isinstance(trait, klass):
            if klass is List and getattr(trait, "_trait", None) is not None:
                inner = type_name(trait._trait)
                return f"list of {inner}"
            if klass is Enum:
                return "one of " + ", ".join(repr(v) for v in trait.values)
            if klass is Type:
                return f"subclass of `{trait.klass.__module__}.{trait.klass.__name__}`"
            return name
    return type(trait).__name__


def default_text(cls: type[Configurable], name: str, trait) -> str:
    """The default as it would be written in a config file, or a phrase when computed."""
    if name in getattr(cls, "_trait_default_generators", {}):
        return "computed at start-up (see the description)"
    if isinstance(trait, Type):
        klass = trait.default_value
        if isinstance(klass, type):
            return f"`{klass.__module__}.{klass.__name__}`"
    value = trait.default_value_repr()
    return f"`{value}`"


def help_markdown(text: str) -> str:
    """Help text with Sphinx roles turned into plain code, dedented."""
    text = inspect.cleandoc(text or "")
    return _ROLE.sub(lambda m: f"``{m.group(1)}``", text) or "*(no help text)*"


def label(cls_name: str, trait_name: str | None = None) -> str:
    """The cross-reference target of a class or one of its traits.

    ``config-gpuhubservice`` for the class, ``config-gpuhubservice-db_url`` for a trait.
    """
    base = f"config-{cls_name.lower()}"
    return f"{base}-{trait_name.lower()}" if trait_name else base


def render_class(cls: type[Configurable]) -> str:
    """One class: heading, docstring, and every configurable trait (level 3 and 4 headings)."""
    traits = config_traits(cls)
    own = {n: t for n, t in traits.items() if is_own(t)}
    inherited = {n: t for n, t in traits.items() if not is_own(t)}
    doc = inspect.cleandoc(cls.__doc__ or "")
    out = [
        f"({label(cls.__name__)})=",
        f"### {cls.__name__}",
        "",
        f"`{cls.__module__}.{cls.__name__}`",
        "",
        help_markdown(doc),
        "",
    ]
    for name, trait in own.items():
        out += [
            f"({label(cls.__name__, name)})=",
            f"#### `{cls.__name__}.{name}`",
            "",
            f"- **Type:** {type_name(trait)}",
            f"- **Default:** {default_text(cls, name, trait)}",
            "",
            help_markdown(trait.help),
            "",
        ]
    # a jupyter-server extension app's inherited settings belong to jupyter-server
    if inherited and (not issubclass(cls, Application) or cls.__module__.startswith("jupyter_")):
        bases = sorted(
            {f"`{t.this_class.__module__}.{t.this_class.__name__}`" for t in inherited.values()}
        )
        out += [
            f"`{cls.__name__}` also takes the settings of {', '.join(bases)}, documented "
            "with those projects: " + ", ".join(f"`{cls.__name__}.{n}`" for n in inherited) + ".",
            "",
        ]
    elif inherited:
        out += [
            f"`{cls.__name__}` also takes the settings every traitlets application has:",
            "",
            "| setting | type | default |",
            "| --- | --- | --- |",
        ]
        for name, trait in inherited.items():
            out.append(
                f"| `{cls.__name__}.{name}` | {type_name(trait)} "
                f"| {default_text(cls, name, trait)} |"
            )
        out.append("")
    return "\n".join(out)


def render() -> str:
    """The whole generated part of the configuration reference."""
    return "\n".join(render_class(cls) for cls in load_classes())


if __name__ == "__main__":  # pragma: no cover - a preview for writers
    print(render())
