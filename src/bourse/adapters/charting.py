"""Candlestick charts as PNG (Pillow): prices above, volume below, time along the bottom.

Prices become pixels through floats: a chart is a picture, no amount is computed from it. Each
candle sits over its own period (a period without trades is a gap), so the time axis is true.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from PIL import Image, ImageDraw, ImageFont

from bourse.domain.marketdata import Candle

WIDTH, HEIGHT = 1200, 640
LEFT, RIGHT, TOP, BOTTOM = 16, 96, 44, 36
VOLUME_SHARE = 0.2
BACKGROUND = (19, 23, 34)
GRID = (42, 46, 57)
TEXT = (209, 212, 220)
MUTED = (120, 123, 134)
UP = (38, 166, 154)
DOWN = (239, 83, 80)


def _label(value: float, span: float) -> str:
    places = 2 if span >= 10 else 4 if span >= 0.1 else 8
    return f"{value:,.{places}f}"


class PillowChartRenderer:
    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.width, self.height = width, height
        self._font = ImageFont.load_default(size=13)
        self._title_font = ImageFont.load_default(size=16)

    def render(self, title: str, candles: Sequence[Candle], start: datetime, end: datetime) -> bytes:
        image = Image.new("RGB", (self.width, self.height), BACKGROUND)
        draw = ImageDraw.Draw(image)
        subtitle = f"{start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC"
        draw.text((LEFT, 12), title, fill=TEXT, font=self._title_font)
        draw.text(
            (LEFT + 12 + draw.textlength(title, font=self._title_font), 14),
            subtitle,
            fill=MUTED,
            font=self._font,
        )
        if not candles:
            message = "No trades in this range"
            size = draw.textlength(message, font=self._title_font)
            draw.text(
                ((self.width - size) / 2, self.height / 2 - 8), message, fill=TEXT, font=self._title_font
            )
        else:
            self._candles(draw, candles, start, end)
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    def _candles(
        self, draw: ImageDraw.ImageDraw, candles: Sequence[Candle], start: datetime, end: datetime
    ) -> None:
        plot_w = self.width - LEFT - RIGHT
        plot_h = self.height - TOP - BOTTOM
        price_h = plot_h * (1 - VOLUME_SHARE) - 8
        volume_top = TOP + price_h + 8
        first = min(start, candles[0].start)
        last = max(end, candles[-1].interval.end_of(candles[-1].start))
        seconds = max((last - first).total_seconds(), 1.0)

        def x(moment: datetime) -> float:
            return LEFT + (moment - first).total_seconds() / seconds * plot_w

        low = float(min(c.low for c in candles))
        high = float(max(c.high for c in candles))
        pad = (high - low) * 0.05 or (abs(high) * 0.01 or 1.0)
        low, high = low - pad, high + pad

        def y(price: Decimal) -> float:
            return TOP + (high - float(price)) / (high - low) * price_h

        top_volume = float(max(c.base_volume for c in candles)) or 1.0
        for i in range(5):
            level = high - (high - low) * i / 4
            row = TOP + price_h * i / 4
            draw.line([(LEFT, row), (LEFT + plot_w, row)], fill=GRID)
            draw.text((LEFT + plot_w + 6, row - 7), _label(level, high - low), fill=TEXT, font=self._font)
        span = last - first
        for i in range(5):
            moment = first + span * i / 4
            if span <= timedelta(days=1):
                text = f"{moment:%H:%M}"
            elif span <= timedelta(days=10):
                text = f"{moment:%m-%d %H:%M}"
            else:
                text = f"{moment:%Y-%m-%d}"
            column = x(moment)
            draw.line([(column, TOP), (column, TOP + plot_h)], fill=GRID)
            width = draw.textlength(text, font=self._font)
            draw.text(
                (min(max(column - width / 2, LEFT), LEFT + plot_w - width), self.height - BOTTOM + 10),
                text,
                fill=TEXT,
                font=self._font,
            )
        for c in candles:
            x0, x1 = x(c.start), x(c.interval.end_of(c.start))
            body = max((x1 - x0) * 0.7, 1.0)
            middle = (x0 + x1) / 2
            color = UP if c.close >= c.open else DOWN
            draw.line([(middle, y(c.high)), (middle, y(c.low))], fill=color)
            top, bottom = sorted((y(c.open), y(c.close)))
            draw.rectangle([middle - body / 2, top, middle + body / 2, max(bottom, top + 1)], fill=color)
            bar = float(c.base_volume) / top_volume * (plot_h * VOLUME_SHARE)
            draw.rectangle(
                [
                    middle - body / 2,
                    volume_top + plot_h * VOLUME_SHARE - bar,
                    middle + body / 2,
                    volume_top + plot_h * VOLUME_SHARE,
                ],
                fill=color,
            )
