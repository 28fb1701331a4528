"""``LayerSchedule``: which physical blocks run, in which order, as encoder and decoder halves.

``GPT.forward_hidden`` runs the encoder indices, pushing each output on a stack, then the
decoder indices; decoder position ``j`` first pops the stack into the stream through
``model.skips(j, x, popped)`` when ``j < model.skips.num_skips`` and the stack is not empty
(LIFO pairing, pg_core §4.2 and §5.3). A block index may appear several times: the same module
runs again with shared weights (depth recurrence).

A schedule has a base layout and, optionally, a looped layout used while ``looping_active`` is
true. ``num_skips`` is the most skip slots either layout can use, ``max(min(len(enc),
len(dec)))``; it is fixed when the skips are built, so install a schedule with
``GPT.set_schedule`` (which resizes ``model.skips``), never by assigning ``model.schedule``.
"""
from __future__ import annotations

from typing import Optional, Sequence

from golf_core.errors import GolfError


class LayerSchedule:
    """Encoder/decoder block indices, with an optional looped layout and its switch.

    :param encoder: physical block indices of the encoder half (base layout).
    :param decoder: the decoder half (base layout).
    :param looped_encoder: encoder indices while ``looping_active`` (optional).
    :param looped_decoder: decoder indices while ``looping_active`` (given with ``looped_encoder``).
    """

    def __init__(self, encoder: Sequence[int], decoder: Sequence[int],
                 looped_encoder: Optional[Sequence[int]] = None,
                 looped_decoder: Optional[Sequence[int]] = None):
        if (looped_encoder is None) != (looped_decoder is None):
            raise GolfError("LayerSchedule: give both looped_encoder and looped_decoder, or neither")
        self.encoder = tuple(int(i) for i in encoder)
        self.decoder = tuple(int(i) for i in decoder)
        self.looped_encoder = None if looped_encoder is None else tuple(int(i) for i in looped_encoder)
        self.looped_decoder = None if looped_decoder is None else tuple(int(i) for i in looped_decoder)
        self._looping_active = False

    @classmethod
    def unet(cls, num_layers: int) -> "LayerSchedule":
        """The baseline: encoder ``0..L//2-1``, decoder ``L//2..L-1``, no looped layout."""
        half = num_layers // 2
        return cls(range(half), range(half, num_layers))

    @property
    def has_loop(self) -> bool:
        """Whether a looped layout exists."""
        return self.looped_encoder is not None

    @property
    def looping_active(self) -> bool:
        """Whether the looped layout runs (False at construction)."""
        return self._looping_active

    @looping_active.setter
    def looping_active(self, value: bool) -> None:
        if value and not self.has_loop:
            raise GolfError("looping_active = True, but the model's LayerSchedule has no looped layout (is a depth-recurrence plugin active?)")
        self._looping_active = bool(value)

    def active(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """``(encoder, decoder)`` indices of the layout that runs now."""
        if self._looping_active:
            return self.looped_encoder, self.looped_decoder
        return self.encoder, self.decoder

    def layouts(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """Every layout, base first."""
        out = [(self.encoder, self.decoder)]
        if self.has_loop:
            out.append((self.looped_encoder, self.looped_decoder))
        return out

    @property
    def num_skips(self) -> int:
        """Skip slots needed: ``max`` over layouts of ``min(len(encoder), len(decoder))``."""
        return max(min(len(e), len(d)) for e, d in self.layouts())

    def block_applications(self) -> int:
        """Blocks run per forward in the active layout (9 for the baseline; 15 for #1394 looped)."""
        e, d = self.active()
        return len(e) + len(d)

    def validate(self, num_layers: int) -> None:
        """Raise ``GolfError`` if an index is outside ``0..num_layers-1`` or a layout is empty."""
        for e, d in self.layouts():
            if not e and not d:
                raise GolfError("LayerSchedule: a layout runs no block")
            bad = [i for i in e + d if not 0 <= i < num_layers]
            if bad:
                raise GolfError(f"LayerSchedule: block indices {bad} outside 0..{num_layers - 1}")

    def to_dict(self) -> dict:
        """Plain dict of the layouts and the switch (for manifests)."""
        return {"encoder": list(self.encoder), "decoder": list(self.decoder),
                "looped_encoder": None if self.looped_encoder is None else list(self.looped_encoder),
                "looped_decoder": None if self.looped_decoder is None else list(self.looped_decoder),
                "looping_active": self._looping_active}

    def __repr__(self) -> str:
        loop = f", looped=({list(self.looped_encoder)}, {list(self.looped_decoder)})" if self.has_loop else ""
        return f"LayerSchedule(encoder={list(self.encoder)}, decoder={list(self.decoder)}{loop}, looping_active={self._looping_active})"
