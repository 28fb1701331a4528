"""How the core calls the active plugins' hooks, whatever finds their implementations.

``HookCalls`` holds the calling rules of every hook kind (transform, observer, exclusive;
``golf_core.hookspecs``): transforms and observers in the recipe's ``plugins`` order, an
exclusive hook on its single provider or else on the core's built-in plugin
(``golf_core.defaults``). A subclass says where the implementations are:
``golf_core.plugins.ActivePlugins`` asks pluggy, the compact exported script's
``golf_core.export.lean.BakedPlugins`` reads the table written at export time.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional

from .errors import PluginError

#: The name the core's built-in plugin is called by (``golf_core.defaults.NAME``).
DEFAULTS_NAME = "golf-core"


class HookCalls:
    """The ordered hook callers over ``order`` (active plugin names) and ``options`` (each one's
    validated options); subclasses implement :meth:`providers`, :meth:`function` and
    :meth:`no_options`."""

    def __init__(self, order: list[str], options: dict[str, Any]):
        self.order = list(order)
        self.options = options
        self.trace = os.environ.get("GOLF_TRACE_PLUGINS", "") not in ("", "0")

    def providers(self, hook: str) -> list[str]:
        """Active plugins implementing ``hook``, in recipe order."""
        raise NotImplementedError

    def function(self, hook: str, name: str) -> tuple[Callable[..., Any], list[str]]:
        """``name``'s implementation of ``hook`` and the arguments it takes (KeyError: none)."""
        raise NotImplementedError

    def no_options(self) -> Any:
        """The options the core's built-in implementations get."""
        raise NotImplementedError

    def _impl(self, hook: str, name: str) -> Callable[..., Any]:
        """``name``'s implementation of ``hook`` as a keyword-only callable (``opts`` included)."""
        fn, argnames = self.function(hook, name)
        who = None if name == DEFAULTS_NAME else name

        def call(**kwargs: Any) -> Any:
            missing = [a for a in argnames if a not in kwargs]
            if missing:
                raise PluginError(f"plugin {name!r}: {hook} asks for unknown argument(s) {missing}")
            ctx = kwargs.get("ctx")
            if not hasattr(ctx, "in_plugin"):  # no run context (tests, registration)
                return fn(*[kwargs[a] for a in argnames])
            with ctx.in_plugin(who):  # validation reads are attributed to ``who``
                return fn(*[kwargs[a] for a in argnames])

        return call

    def _trace(self, hook: str, names: list[str], note: str = "") -> None:
        if self.trace:
            print(f"[golf trace] {hook}: {', '.join(names) if names else '(core default)'}{note}", file=sys.stderr)

    def transform(self, hook: str, value_arg: str, value: Any, *, after: Optional[Callable[[str, Any], None]] = None,
                  **kwargs: Any) -> Any:
        """Run a transform hook in recipe order, threading ``value`` through ``value_arg``;
        ``after(name, value)`` (if given) sees the value each provider leaves."""
        names = self.providers(hook)
        self._trace(hook, names)
        for name in names:
            out = self._impl(hook, name)(**{value_arg: value, **kwargs, "opts": self.options[name]})
            if out is not None:
                value = out
            if after is not None:
                after(name, value)
        return value

    def observe(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook on every active provider, in recipe order."""
        names = self.providers(hook)
        if names:
            self._trace(hook, names)
        for name in names:
            self._impl(hook, name)(**kwargs, opts=self.options[name])

    def collect(self, hook: str, **kwargs: Any) -> dict[str, Any]:
        """Call an observer hook and return ``{plugin: result}`` for non-None results."""
        out: dict[str, Any] = {}
        names = self.providers(hook)
        if names:
            self._trace(hook, names)
        for name in names:
            r = self._impl(hook, name)(**kwargs, opts=self.options[name])
            if r is not None:
                out[name] = r
        return out

    def call_plugin(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call one active plugin's implementation of ``hook`` (e.g. a checkpoint restore)."""
        return self._impl(hook, name)(**kwargs, opts=self.options[name])

    def exclusive(self, hook: str, **kwargs: Any) -> Any:
        """Call the single active provider of an exclusive hook, else the core's built-in
        implementation (``golf_core.defaults``)."""
        names = self.providers(hook)
        if len(names) > 1:
            raise PluginError(f"{hook} is exclusive but provided by {', '.join(names)}; keep one of them")
        self._trace(hook, names)
        if not names:
            return self._impl(hook, DEFAULTS_NAME)(**kwargs, opts=self.no_options())
        return self._impl(hook, names[0])(**kwargs, opts=self.options[names[0]])
