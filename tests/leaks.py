"""The forms in which a server or a library may echo a credential back, for leak tests."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, quote_plus


def _b64(text: str, *, urlsafe: bool = False, pad: bool = True) -> str:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    out = encode(text.encode()).decode()
    return out if pad else out.rstrip("=")


def echoes(key: str) -> dict[str, str]:
    """Name -> a text that carries ``key`` in one form (the key itself never verbatim)."""
    forms: dict[str, str] = {}
    for lead in ("", "x", "xy"):  # the key at offsets 0, 1, 2 mod 3 of the encoded text
        for urlsafe in (False, True):
            for pad in (True, False):
                name = f"base64{'-urlsafe' if urlsafe else ''}{'' if pad else '-nopad'}+{len(lead)}"
                forms[name] = _b64(f"{lead}{key} end", urlsafe=urlsafe, pad=pad)
    forms["base64 of an Api-Key header"] = _b64(f"Api-Key {key}")
    forms["base64 of a JSON body"] = _b64(json.dumps({"authorization": f"Api-Key {key}"}))
    forms["base64 split in MIME lines"] = "\r\n".join(
        _b64(f"user:{key}")[i : i + 9] for i in range(0, len(_b64(f"user:{key}")), 9))
    every = "".join(f"%{b:02X}" for b in key.encode())
    forms["url-encoded, every byte, upper hex"] = every
    forms["url-encoded, every byte, lower hex"] = every.lower()
    forms["url-encoded query"] = "key=" + quote(f"Api-Key {key}", safe="")
    forms["url-encoded form (+ for space)"] = quote_plus(f"Api Key {key}")
    forms["json \\u escapes"] = "".join(f"\\u{ord(c):04x}" for c in key)
    forms["json \\u escapes, upper hex"] = "".join(f"\\u{ord(c):04X}" for c in key)
    forms["json escaped slashes"] = json.dumps({"key": key}).replace("/", "\\/")
    forms["html decimal entities"] = "".join(f"&#{ord(c)};" for c in key)
    forms["html hex entities"] = "".join(f"&#x{ord(c):x};" for c in key)
    named = {"/": "&sol;", ".": "&period;", "_": "&lowbar;", "-": "&#45;"}
    forms["html named entities"] = "".join(named.get(c, c) for c in key)
    third = len(key) // 3
    forms["split across lines"] = f"{key[:third]}\n{key[third:2 * third]}\r\n  {key[2 * third:]}"
    forms["split by a space"] = f"{key[:5]} {key[5:]}"
    forms["a run of 8"] = f"prefix{key[3:11]}suffix"
    forms["a run of 8 at the end"] = f"tail:{key[-8:]}"
    forms["percent-encoded, JSON-escaped (a URL in a JSON error)"] = json.dumps(
        "https://x.example/?k=" + quote(key, safe="")).replace("/", "\\/")
    # What a traceback may hold when code handled the key (issue 25: %chat explain).
    forms["hex of the bytes"] = key.encode().hex()
    forms["hex of the bytes, upper case"] = key.encode().hex().upper()
    forms["hex with colons"] = key.encode().hex(":")
    forms["str(list(key))"] = str(list(key))
    forms["reversed"] = key[::-1]
    return {name: text for name, text in forms.items() if key not in text}


def traces(key: str) -> list[str]:
    """Substrings whose presence in an output means (part of) the key leaked.

    Every 8-character run of the key, and of the stable cores of its base64 forms.
    """
    raw = key.encode()
    cores = [key]
    for skip in range(3):
        core = base64.b64encode(raw[skip : skip + (len(raw) - skip) // 3 * 3]).decode()
        cores += [core, core.replace("+", "-").replace("/", "_")]
    return sorted({c[i : i + 8] for c in cores for i in range(len(c) - 7)})


def leaked(key: str, text: str) -> list[str]:
    """The traces of ``key`` found in ``text``, after undoing the escapes ``echoes`` uses."""
    import html
    import re
    from urllib.parse import unquote_plus

    views = [text, "".join(text.split())]
    views.append(unquote_plus(views[1]))
    views.append(re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)),
                        views[1]).replace("\\/", "/"))
    views.append(html.unescape(views[1]))
    views.append(_decoded_lists(text))
    views += _decoded_hex(text)
    views += [view[::-1] for view in views]
    return sorted({t for t in traces(key) for v in views if t in v})


def _decoded_lists(text: str) -> str:
    """Quoted one-character items (``['A', 'Q', ...]``) joined back into a text."""
    import re

    return "".join(re.findall(r"""['"](\\.|[^'"\\])['"]""", text))


def _decoded_hex(text: str) -> list[str]:
    """Every run of hex digits (maybe ``:``-separated) as text, at both alignments."""
    import re

    found = []
    for run in re.findall(r"(?:[0-9a-fA-F]{2}:?){8,}", text):
        digits = run.replace(":", "")
        for skip in (0, 1):
            usable = digits[skip : skip + (len(digits) - skip) // 2 * 2]
            found.append(bytes.fromhex(usable).decode("latin-1"))
    return found
