"""Device URLs: ``usb://lmc``, ``sim://lmc?timing=instant``, ``serial:///dev/ttyUSB0?protocol=grbl``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from markstation.errors import ConfigError
from markstation.i18n import _


@dataclass(frozen=True)
class DeviceURL:
    scheme: str  # usb | sim | serial
    host: str  # "lmc", "grbl"; empty for serial
    path: str  # the serial port for serial://
    params: tuple[tuple[str, str], ...]
    raw: str

    @staticmethod
    def parse(text: str) -> DeviceURL:
        parts = urlsplit(text)
        if not parts.scheme or "://" not in text:
            raise ConfigError(
                _(
                    "device URL '{text}': expected scheme://…, e.g. usb://lmc, sim://lmc, sim://grbl or serial:///dev/ttyUSB0?protocol=grbl"
                ).format(text=text)
            )
        seen: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in seen:
                raise ConfigError(
                    _("device URL '{text}': option '{key}' given twice").format(text=text, key=key)
                )
            seen[key] = value
        return DeviceURL(
            scheme=parts.scheme.lower(),
            host=parts.netloc.lower(),
            path=parts.path,
            params=tuple(seen.items()),
            raw=text,
        )

    @property
    def options(self) -> dict[str, str]:
        return dict(self.params)

    def check_keys(self, allowed: Iterable[str]) -> dict[str, str]:
        """Return the options, refusing any key not in ``allowed`` (a typo must not be ignored)."""
        allowed_set = set(allowed)
        opts = self.options
        unknown = sorted(set(opts) - allowed_set)
        if unknown:
            known = ", ".join(sorted(allowed_set)) or "none"
            raise ConfigError(
                _("device URL '{raw}': unknown option '{unknown}' (known: {known})").format(
                    raw=self.raw, unknown=unknown[0], known=known
                )
            )
        return opts

    def with_params(self, extra: Mapping[str, str]) -> str:
        merged = {**self.options, **extra}
        base = f"{self.scheme}://{self.host}{self.path}"
        return f"{base}?{urlencode(merged)}" if merged else base


def _parse_number(
    url: DeviceURL, key: str, value: str, kind: type[float] | type[int], minimum: float
) -> float:
    try:
        number = kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(
            _("device URL '{raw}': option '{key}={value}' is not {what}").format(
                raw=url.raw, key=key, value=value, what=what
            )
        ) from None
    if number < minimum:
        raise ConfigError(
            _("device URL '{raw}': option '{key}={value}' is below {minimum:g}").format(
                raw=url.raw, key=key, value=value, minimum=minimum
            )
        )
    return number


def parse_float_option(url: DeviceURL, key: str, value: str, *, minimum: float = 0.0) -> float:
    return float(_parse_number(url, key, value, float, minimum))


def parse_int_option(url: DeviceURL, key: str, value: str, *, minimum: int = 0) -> int:
    return int(_parse_number(url, key, value, int, minimum))
