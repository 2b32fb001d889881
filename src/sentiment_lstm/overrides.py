"""The command line's Hydra overrides, checked before Hydra runs: a typo, a wrong type or an
unknown group option ends with one line that names the key and what it takes, where Hydra
prints a multi-line report that suggests `+key=value` (a key nothing reads).

    check(["model.hiddn_size=3"])  # ConfigError: model.hiddn_size: no such key; did you
                                   # mean model.hidden_size?
"""

import dataclasses
import difflib
import enum
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser  # Hydra's own flags, parsed as it does
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException, HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from sentiment_lstm.config import Config, ConfigError, register
from sentiment_lstm.io import first_line

CONFIGS = Path(__file__).parent / "configs"
# Flags under which Hydra composes nothing, or composes from configs other than the
# package's: those command lines are left to Hydra as they are.
_UNCHECKED = ("help", "hydra_help", "shell_completion", "experimental_rerun", "config_path",
              "config_dir")
_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"),
          bool: ("true or false", "booleans"), str: ("a string", "strings")}


def check(argv: list[str], config_name: str = "config") -> None:
    """Raise ConfigError, one line, if Hydra would refuse the overrides in argv (the command
    line after the program's name). A sweep (-m) is checked value by value."""
    args = get_args_parser().parse_args(argv)  # a bad flag exits 2 with usage, as in Hydra
    if any(getattr(args, flag) for flag in _UNCHECKED):
        return
    register()
    parsed = [_parse(line) for line in args.overrides]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        name = args.config_name or config_name
        variants = list(_variants(parsed))
        if len(variants) > 1 and not args.multirun and not _multirun_config(name, variants[0]):
            sweep = next(o.input_line for o in parsed if o.is_sweep_override())
            raise ConfigError(f"{sweep}: a sweep needs -m (a list is written [a,b], a string "
                              f"with a comma is quoted)")
        for overrides in variants:
            _compose(name, overrides, parsed)


def _parse(line: str) -> Override:
    try:
        return OverridesParser.create().parse_override(line)
    except HydraException as e:  # the grammar's: OverrideParseException where Hydra wraps it
        raise ConfigError(f"cannot parse the override {line!r}: {first_line(e)}") from None


def _variants(parsed: list[Override]) -> Iterator[list[str]]:
    """The command lines that cover every value of every sweep: the first value of each,
    then each other value once. A range sweep's values share one type: its first suffices;
    a glob or an interval sweep is Hydra's (it needs the sweeper)."""
    values = []
    for o in parsed:
        if not o.is_sweep_override():
            values.append([o.input_line])
        elif o.is_choice_sweep() and o.value_type.name != "GLOB_CHOICE_SWEEP":
            values.append([f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()])
        elif o.is_range_sweep():
            values.append([f"{o.get_key_element()}={next(o.sweep_string_iterator())}"])
        else:
            values.append([])
    base = [v[0] for v in values if v]
    yield base
    for i, choices in enumerate(v for v in values if v):
        for choice in choices[1:]:
            yield [*base[:i], choice, *base[i + 1:]]


def _multirun_config(name: str, overrides: list[str]) -> bool:
    """Whether the config itself sweeps (an experiment sets hydra.mode=MULTIRUN)."""
    try:
        return str(compose(name, overrides, return_hydra_config=True).hydra.mode) == \
            "RunMode.MULTIRUN"
    except ConfigCompositionException:
        return False  # the variants' own composition says what is wrong


def _compose(name: str, overrides: list[str], parsed: list[Override]) -> None:
    try:
        compose(name, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as e:
        raise ConfigError(_missing_option(e)) from None
    except ConfigCompositionException as e:
        raise ConfigError(_explain(e, parsed, name)) from None
    for o in parsed:  # +key=value adds a key; one outside the schema, nothing would read
        key = o.key_or_group
        if (o.is_add() or o.is_force_add()) and not o.is_hydra_override() and \
                "/" not in key and not (CONFIGS / key).is_dir() and key not in _keys(name, False):
            raise ConfigError(_unknown_key(key, name))


def _explain(e: ConfigCompositionException, parsed: list[Override], name: str) -> str:
    cause = e.__cause__
    full_key = getattr(cause, "full_key", None)
    if not full_key:
        return first_line(e)
    o = next((o for o in parsed if o.key_or_group == full_key), None) or next(
        (o for o in parsed if o.key_or_group.startswith(full_key + ".")), None)
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
        return _unknown_key(o.key_or_group if o else full_key, name)
    line = o.input_line if o else full_key
    if isinstance(cause, ValidationError):
        expected = expected_type(full_key)
        if expected and o and o.key_or_group == full_key:
            return f"{line}: expected {expected}"
        if expected:  # a key below a leaf: model.hidden_size.x=3
            return f"{line}: {full_key} takes {expected}"
    return f"{line}: {first_line(cause)}"


def _unknown_key(key: str, name: str) -> str:
    close = difflib.get_close_matches(key, _keys(name, key.startswith("hydra.")), n=3,
                                      cutoff=0.8)
    hint = f"did you mean {' or '.join(close)}?" if close else \
        "python -m sentiment_lstm.train --cfg job lists the keys"
    return f"{key}: no such key; {hint}"


def _missing_option(e: MissingConfigException) -> str:
    if not e.missing_cfg_file or e.options is None:
        return first_line(e)
    group, option = e.missing_cfg_file.rsplit("/", 1)
    options = sorted(e.options)
    close = difflib.get_close_matches(option, options, n=1, cutoff=0.6)
    return (f"{group}={option}: no such option; {group} has {', '.join(options)}"
            + (f"; did you mean {close[0]}?" if close else ""))


@cache
def _keys(name: str, hydra: bool) -> list[str]:
    """The default config's dotted leaf keys: Hydra's own (hydra.*) or the package's."""
    keys = dotted_keys(compose(name, return_hydra_config=True))
    return [k for k in keys if k.startswith("hydra.") == hydra]


def dotted_keys(cfg: DictConfig) -> list[str]:
    """["data.source", ..., "seed"]: every leaf of cfg by its dotted key."""
    keys = []

    def walk(node: dict, prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict) and v:
                walk(v, f"{prefix}{k}.")
            else:
                keys.append(f"{prefix}{k}")
    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return keys


def expected_type(key: str) -> str | None:
    """What the schema takes at a dotted key, in words: "an integer", "one of last, max",
    "an integer or null"; None for a key outside it (Hydra's own)."""
    node: typing.Any = Config
    for part in key.split("."):
        if not dataclasses.is_dataclass(node):
            return None
        node = typing.get_type_hints(node).get(part)
        if node is None:
            return None
    return _describe(node)


def _describe(t: typing.Any, plural: bool = False) -> str:
    args = typing.get_args(t)
    if type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        return f"{_describe(inner, plural)} or null"
    if typing.get_origin(t) is list:
        return f"a list of {_describe(args[0], plural=True)}"
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return "one of " + ", ".join(m.value for m in t)
    return _NAMES.get(t, (t.__name__, t.__name__))[plural]


