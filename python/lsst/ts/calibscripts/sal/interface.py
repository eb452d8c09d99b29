"""Component interface definitions: commands, events and telemetry as data.

Each SAL component is described by one YAML file in
``schemas/interfaces/<Component>.yaml`` (the role ts_xml plays for Rubin):
its topics, their fields and field types, and which generic topics it has.
The generic topics every CSC shares, and the ``ackcmd`` topic, are defined
once in ``schemas/interfaces/generics.yaml``.
"""

from __future__ import annotations

__all__ = [
    "ComponentInterface",
    "FieldDefinition",
    "TopicDefinition",
    "TopicKind",
    "available_components",
]

import enum
import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

from ..resources import schemas_dir
from .errors import InterfaceDefinitionError

#: SAL field types and the Python type a value of each has.
SAL_FIELD_TYPES: Mapping[str, type] = types.MappingProxyType(
    {
        "boolean": bool,
        "byte": int,
        "short": int,
        "int": int,
        "long": int,
        "long long": int,
        "unsigned short": int,
        "unsigned int": int,
        "unsigned long": int,
        "float": float,
        "double": float,
        "string": str,
    }
)


class TopicKind(enum.Enum):
    """The kinds of SAL topic; the value is the prefix of the SAL name."""

    COMMAND = "command_"
    EVENT = "logevent_"
    TELEMETRY = ""
    ACKCMD = "ackcmd"

    @property
    def attr_prefix(self) -> str:
        """Prefix of the attribute that holds such a topic (``cmd_``...)."""
        return {"command_": "cmd_", "logevent_": "evt_", "": "tel_", "ackcmd": "ack_"}[self.value]


@dataclass(frozen=True)
class FieldDefinition:
    """One field of a topic.

    Attributes
    ----------
    name : `str`
        Field name.
    sal_type : `str`
        SAL type name, a key of ``SAL_FIELD_TYPES``.
    count : `int`
        1 for a scalar, the maximum length for an array.
    units : `str`
        Units of the value.
    description : `str`
        What the field means.
    """

    name: str
    sal_type: str
    count: int = 1
    units: str = "unitless"
    description: str = ""

    @property
    def python_type(self) -> Any:
        """The annotation a message model uses for this field."""
        scalar = SAL_FIELD_TYPES[self.sal_type]
        return list[scalar] if self.count > 1 else scalar  # type: ignore[valid-type]

    def default(self) -> Any:
        """Return a fresh default value (zero, empty string or list of zeros)."""
        scalar = SAL_FIELD_TYPES[self.sal_type]()
        return [scalar] * self.count if self.count > 1 else scalar


@dataclass(frozen=True)
class TopicDefinition:
    """One topic of a component.

    Attributes
    ----------
    component : `str`
        Name of the component, e.g. ``"ATCamera"``.
    kind : `TopicKind`
        Command, event, telemetry or ackcmd.
    name : `str`
        Short name, e.g. ``"takeImages"``.
    description : `str`
        What the topic is for.
    fields : `tuple` [`FieldDefinition`, ...]
        The topic's own fields (private fields are added by the kernel).
    """

    component: str
    kind: TopicKind
    name: str
    description: str
    fields: tuple[FieldDefinition, ...]

    @property
    def sal_name(self) -> str:
        """SAL topic name: ``command_takeImages``, ``logevent_state``..."""
        return "ackcmd" if self.kind is TopicKind.ACKCMD else self.kind.value + self.name

    @property
    def attr_name(self) -> str:
        """Attribute name on a Controller or Remote: ``cmd_takeImages``... (``ack_ackcmd``)."""
        return "ack_ackcmd" if self.kind is TopicKind.ACKCMD else self.kind.attr_prefix + self.name

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the topic's own fields."""
        return tuple(f.name for f in self.fields)


# Pydantic models of the definition files: unknown keys are errors, so a
# typo in an interface file is caught when it is loaded.
class _FieldFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    type: Literal[
        "boolean",
        "byte",
        "short",
        "int",
        "long",
        "long long",
        "unsigned short",
        "unsigned int",
        "unsigned long",
        "float",
        "double",
        "string",
    ]
    description: str = ""
    units: str = "unitless"
    count: int = pydantic.Field(default=1, ge=1)


class _TopicFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    description: str = ""
    fields: dict[str, _FieldFile] = pydantic.Field(default_factory=dict)


class _ComponentFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    description: str = ""
    indexed: bool = False
    # ts_xml's AddedGenerics: categories ("csc", "configurable") and single
    # generic topic names; "mandatory" is always included.
    generics: str | list[str] = "csc"
    commands: dict[str, _TopicFile] = pydantic.Field(default_factory=dict)
    events: dict[str, _TopicFile] = pydantic.Field(default_factory=dict)
    telemetry: dict[str, _TopicFile] = pydantic.Field(default_factory=dict)


class _GenericsFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    description: str = ""
    ackcmd: _TopicFile
    categories: dict[str, list[str]]
    commands: dict[str, _TopicFile]
    events: dict[str, _TopicFile]


#: The generics category every component has (ts_xml's "mandatory").
MANDATORY_GENERICS = "mandatory"


def _read_yaml(path: Path) -> Any:
    try:
        with path.open() as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise
    except yaml.YAMLError as e:
        raise InterfaceDefinitionError(f"Interface file {path} is not valid YAML: {e}") from e


#: Fields every message carries; a topic may not define a field of the same name.
_PRIVATE_FIELD_NAMES = frozenset(
    {
        "salIndex",
        "private_sndStamp",
        "private_rcvStamp",
        "private_seqNum",
        "private_identity",
        "private_origin",
    }
)


def _make_topic(component: str, kind: TopicKind, name: str, topic: _TopicFile) -> TopicDefinition:
    clash = _PRIVATE_FIELD_NAMES & set(topic.fields)
    if clash:
        raise InterfaceDefinitionError(
            f"{component}.{name} defines {sorted(clash)}, the name of a private field every message has"
        )
    fields = tuple(
        FieldDefinition(
            name=field_name,
            sal_type=field.type,
            count=field.count,
            units=field.units,
            description=field.description,
        )
        for field_name, field in topic.fields.items()
    )
    return TopicDefinition(
        component=component, kind=kind, name=name, description=topic.description, fields=fields
    )


@functools.cache
def _load_generics() -> _GenericsFile:
    path = schemas_dir() / "interfaces" / "generics.yaml"
    try:
        return _GenericsFile.model_validate(_read_yaml(path))
    except pydantic.ValidationError as e:
        raise InterfaceDefinitionError(f"Invalid generics file {path}: {e}") from e


def available_components() -> list[str]:
    """Return the names of all components with an interface definition."""
    return sorted(p.stem for p in (schemas_dir() / "interfaces").glob("*.yaml") if p.stem[:1].isupper())


@dataclass(frozen=True)
class ComponentInterface:
    """Everything the kernel knows about one component's interface.

    Use `ComponentInterface.load` to read one; results are cached.

    Attributes
    ----------
    name : `str`
        Component name, e.g. ``"Script"``.
    description : `str`
        What the component is.
    indexed : `bool`
        Does the component have an index (``OCPS:1``)?
    commands, events, telemetry : `dict` [`str`, `TopicDefinition`]
        Topics by short name, generic topics included.
    ackcmd : `TopicDefinition`
        The command acknowledgement topic.
    """

    name: str
    description: str
    indexed: bool
    commands: Mapping[str, TopicDefinition]
    events: Mapping[str, TopicDefinition]
    telemetry: Mapping[str, TopicDefinition]
    ackcmd: TopicDefinition

    @classmethod
    @functools.cache
    def load(cls, name: str) -> ComponentInterface:
        """Load the interface of the named component.

        Parameters
        ----------
        name : `str`
            Component name; ``schemas/interfaces/<name>.yaml`` must exist.

        Raises
        ------
        ValueError
            If there is no definition for ``name``.
        InterfaceDefinitionError
            If the definition is malformed.
        """
        path = schemas_dir() / "interfaces" / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(available_components())
            raise ValueError(f"No interface definition for component {name!r}; known components: {known}")
        try:
            data = _ComponentFile.model_validate(_read_yaml(path))
        except pydantic.ValidationError as e:
            raise InterfaceDefinitionError(f"Invalid interface file {path}: {e}") from e
        if data.name != name:
            raise InterfaceDefinitionError(f"Interface file {path} names component {data.name!r}")
        generics = _load_generics()
        added = [data.generics] if isinstance(data.generics, str) else data.generics
        wanted: set[str] = set()
        for item in [MANDATORY_GENERICS, *added]:
            wanted.update(generics.categories.get(item, [item]))
        unknown = wanted - set(generics.commands) - set(generics.events)
        if unknown:
            raise InterfaceDefinitionError(
                f"Interface file {path} asks for unknown generics {sorted(unknown)}"
            )

        def collect(
            kind: TopicKind, generic: Mapping[str, _TopicFile], own: Mapping[str, _TopicFile]
        ) -> dict[str, TopicDefinition]:
            topics = {n: _make_topic(name, kind, n, t) for n, t in generic.items() if n in wanted}
            clash = set(topics) & set(own)
            if clash:
                raise InterfaceDefinitionError(f"Interface file {path} redefines generic topics {clash}")
            topics.update({n: _make_topic(name, kind, n, t) for n, t in own.items()})
            return topics

        return cls(
            name=name,
            description=data.description,
            indexed=data.indexed,
            commands=types.MappingProxyType(collect(TopicKind.COMMAND, generics.commands, data.commands)),
            events=types.MappingProxyType(collect(TopicKind.EVENT, generics.events, data.events)),
            telemetry=types.MappingProxyType(
                {n: _make_topic(name, TopicKind.TELEMETRY, n, t) for n, t in data.telemetry.items()}
            ),
            ackcmd=_make_topic(name, TopicKind.ACKCMD, "ackcmd", generics.ackcmd),
        )
