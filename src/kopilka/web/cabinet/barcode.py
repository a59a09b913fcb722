"""EAN-13 as an SVG, server-side, pure Python (the card numbers are EAN-13)."""

from __future__ import annotations

from kopilka.domain.identifiers import is_valid_card_number

_L = ("0001101", "0011001", "0010011", "0111101", "0100011",
      "0110001", "0101111", "0111011", "0110111", "0001011")  # fmt: skip
_G = tuple("".join("1" if b == "0" else "0" for b in code)[::-1] for code in _L)
_R = tuple("".join("1" if b == "0" else "0" for b in code) for code in _L)
# Which of L/G encodes each of the left six digits, by the first digit.
_PARITY = ("LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
           "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL")  # fmt: skip


def ean13_modules(number: str) -> str:
    """The 95 modules (1 = bar) of a valid EAN-13 number."""
    if not is_valid_card_number(number):
        raise ValueError(f"not an EAN-13 number: {number!r}")
    digits = [int(ch) for ch in number]
    left = "".join(
        (_L if p == "L" else _G)[d] for p, d in zip(_PARITY[digits[0]], digits[1:7], strict=True)
    )
    right = "".join(_R[d] for d in digits[7:])
    return "101" + left + "01010" + right + "101"


def ean13_svg(number: str, *, module: int = 3, height: int = 70) -> str:
    """An SVG of the barcode with the digits under it, quiet zones included."""
    bits = ean13_modules(number)
    quiet = 11
    width = (95 + 2 * quiet) * module
    rects = []
    x = 0
    while x < len(bits):
        if bits[x] == "1":
            run = 1
            while x + run < len(bits) and bits[x + run] == "1":
                run += 1
            guard = x < 3 or 45 <= x < 50 or x >= 92
            h = height + (8 if guard else 0)
            rects.append(
                f'<rect x="{(quiet + x) * module}" y="0" width="{run * module}" height="{h}"/>'
            )
            x += run
        else:
            x += 1
    text = (
        f'<text x="{width // 2}" y="{height + 24}" text-anchor="middle" '
        f'font-family="monospace" font-size="{6 * module}" letter-spacing="2">{number}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 30}" '
        f'role="img" aria-label="EAN-13 {number}" class="barcode">'
        f'<rect width="100%" height="100%" fill="#fff"/><g fill="#000">{"".join(rects)}</g>'
        f"{text}</svg>"
    )
