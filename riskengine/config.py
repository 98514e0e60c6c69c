"""Job configuration: pydantic models validated once, at the boundary.

Field names here are a contract with users' configs and scripts: keep them exactly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from riskengine.errors import ConfigError, one_line
from riskengine.models import MODELS, CorrelatedAssets, build_model, parameter_names
from riskengine.paths import resolve_path

__all__ = ["ConfigError", "McBase", "McConfig", "MarketConfig", "StressMc", "ModelConfig", "Strict", "load_yaml", "resolve_path", "validate"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(Strict):
    """``{name, params}``, or ``{from: DIR}``: the model a calibrate job wrote to DIR."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_calibration(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or "from" not in data:
            return data
        extra = sorted(set(data) - {"from"})
        if extra:
            raise ValueError(f"model.{extra[0]}: not allowed with model.from (the calibration gives name and params)")
        # Imported here, not at the top: the calibration package pulls in optimistix and
        # scipy (~1 s of start-up) that only a config with model.from needs.
        from riskengine.calibration import load_calibrated_model

        base_dir = (info.context or {}).get("base_dir")
        try:
            return load_calibrated_model(str(data["from"]), base_dir=base_dir)
        except ConfigError as err:
            raise ValueError(f"model.from: {err}") from None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
        return name

    @model_validator(mode="after")
    def _params(self) -> ModelConfig:
        build_model(self.name, self.params)  # raises ValueError naming model.params.<field>
        return self

    def build(self, *, scheme: str | None = None):
        return build_model(self.name, self.params, scheme=scheme)

    @property
    def parameter_names(self) -> list[str]:
        return parameter_names(self.name)


def build_assets(model: ModelConfig | dict[str, ModelConfig], names: list[str], correlation, *,
                 scheme: str | None = None):
    """:class:`riskengine.models.CorrelatedAssets` of the underlyings ``names``: ``model``
    shared by all, or one per underlying (``{BTC: ..., ETH: ...}``), correlated by
    ``correlation`` (the market's matrix); a ConfigError names what is missing or wrong."""
    specs = model if isinstance(model, dict) else dict.fromkeys(names, model)
    missing = [u for u in names if u not in specs]
    if missing:
        raise ConfigError(f"model: no model for underlying(s) {missing}; give one per underlying or a shared one")
    models = [specs[u].build(scheme=scheme) for u in names]
    try:
        return CorrelatedAssets.from_correlation(models, correlation, names=names)
    except ValueError as err:
        raise ConfigError(f"market.{err}") from None


class MarketConfig(Strict):
    spot: float = Field(gt=0, allow_inf_nan=False)
    rate: float = Field(default=0.0, ge=-1.0, le=5.0, allow_inf_nan=False)  # continuously compounded
    dividend: float = Field(default=0.0, ge=-1.0, le=5.0, allow_inf_nan=False)


class EuropeanConfig(Strict):
    type: Literal["european"]
    option: Literal["call", "put"]
    strike: float = Field(gt=0, allow_inf_nan=False)
    maturity: float = Field(gt=0, allow_inf_nan=False)

    @property
    def is_call(self) -> bool:
        return self.option == "call"


class McBase(Strict):
    """What every Monte Carlo section shares: paths, seed, dtype, variance scheme, and the
    block and chunk sizes of :mod:`riskengine.simulate` (blocks a power of two: they are
    summed by a halving tree)."""

    paths: int = Field(default=100_000, ge=2)
    seed: int = Field(default=0, ge=0)
    dtype: Literal["float32", "float64"] = "float32"
    scheme: Literal["qe", "euler"] = "qe"
    block_size: int = Field(default=1024, ge=1)
    chunk_paths: int = Field(default=65536, ge=1)

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"must be a power of two, got {value}")
        return value


class McConfig(McBase):
    """The price job's ``mc``: time steps per year, the estimator, AD Greeks."""

    steps_per_year: float = Field(default=252, gt=0, allow_inf_nan=False)
    estimator: Literal["smoothed", "plain"] = "smoothed"
    greeks: bool = True


class StressMc(McBase):
    """The stress job's ``mc``: time steps per day to the longest horizon."""

    paths: int = Field(default=200_000, ge=2)
    steps_per_day: int = Field(default=1, ge=1)


MAX_ALIASES = 100  # YAML anchors expanded per file: a "billion laughs" file stops here


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (the last one would win
    silently) and more than ``MAX_ALIASES`` alias expansions."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, f"more than {MAX_ALIASES} aliases (anchors referenced with *)", event.start_mark
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: ANN001 - PyYAML's signature
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # an unhashable key: PyYAML reports it below
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {one_line(repr(key), limit=60)} (first at line {first.line + 1})",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    lambda loader, node: loader.construct_mapping(node),
)


MAX_VALUES = 1_000_000  # values in a YAML file once its aliases are expanded


def _expanded_size(data: Any) -> int:
    """How many values ``data`` holds with shared (aliased) parts counted each time they
    appear, computed once per shared part (linear in the file, whatever it expands to)."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        if not isinstance(node, dict | list):
            return 1
        known = sizes.get(id(node))
        if known is None:
            children = node.values() if isinstance(node, dict) else node
            known = sizes[id(node)] = 1 + sum(size(child) for child in children)
        return known

    return size(data)


def read_text(path: str | Path, *, what: str) -> str:
    """A text file's content, with a one-line ``ConfigError`` naming ``what`` and the file
    when it is missing, unreadable, binary or not UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{what}: {str(path)!r} is a directory, not a file") from None
    except OSError as err:
        raise ConfigError(f"{what}: cannot read {str(path)!r}: {err.strerror or err}") from None
    if b"\0" in raw[:65536]:
        raise ConfigError(f"{what}: {str(path)!r} is a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{what}: {str(path)!r} is not UTF-8 text (byte {err.start})") from None


def load_yaml(path: str | Path, *, what: str = "config") -> dict[str, Any]:
    """Read a YAML mapping, with a one-line error when the file is missing, binary, not
    UTF-8, malformed, or repeats a key."""
    path = Path(path)
    text = read_text(path, what=what)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{what}: {str(path)!r} is not valid YAML{where}: {problem}") from None
    if _expanded_size(data) > MAX_VALUES:
        raise ConfigError(f"{what}: {str(path)!r} expands to more than {MAX_VALUES:,} values "
                          "(aliases of aliases); write the values out")
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: {str(path)!r} must hold a mapping with a 'job' field, got {type(data).__name__}"
                          if what == "config" else f"{what}: {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


_NAMES_A_FIELD = re.compile(r"^[A-Za-z_][\w\[\]-]*(\.[\w\[\]-]+)+: ")  # "train.lr: ...", "evaluate.baselines: ..."


def format_validation_error(err: ValidationError) -> str:
    """The first pydantic error as one line: ``field.path: message (got value)``."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "config"
    msg = first["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if msg.startswith(("model.", "mc.", "correlation", "limits.")) or _NAMES_A_FIELD.match(msg):
        return msg  # already names the field
    if first["type"] == "missing":
        return f"{loc}: missing required field"
    if first["type"] == "extra_forbidden":
        return f"{loc}: unknown field"
    value = first.get("input")
    got = f" (got {value!r})" if value is not None and not isinstance(value, dict | list) else ""
    return f"{loc}: {msg}{got}"


def validate(model: type[BaseModel], data: dict[str, Any], *, context: dict[str, Any] | None = None) -> BaseModel:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err)) from None
