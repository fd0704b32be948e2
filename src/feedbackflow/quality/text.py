"""Text normalisation applied to every batch before the rules run, so the rules, anonymise and training see one form.

Hostile or careless input hides characters that humans do not see and detectors do not expect: zero-width spaces
and joiners inside an e-mail address (``jo\u200bhn@example.com``), bidirectional overrides that show a card number
reversed, full-width or mathematical look-alike letters and digits (``４１１１``, ``＠``). :func:`normalise_text`

1. applies Unicode NFKC, which folds compatibility forms (full-width, ligatures, styled letters) to their plain
   characters, and
2. removes invisible format characters: zero-width spaces and joiners, the soft hyphen, word joiners, the byte order
   mark and every bidirectional embedding, override, isolate and mark.

The raw batch stays untouched in ``data/raw``; the validated rows carry the normalised text, and ``text_length`` is
measured on it. Removing joiners splits emoji sequences and Persian ZWNJ ligatures into their parts, which keeps
their meaning for classification.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Invisible format characters removed after NFKC (an RE2 character class of the literal characters).
INVISIBLE = (
    "["
    "\u00ad"  # soft hyphen
    "\u061c"  # Arabic letter mark (bidi)
    "\u180e"  # Mongolian vowel separator
    "\u200b-\u200f"  # zero-width space, non-joiner, joiner, left-to-right and right-to-left marks
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u2064"  # word joiner and invisible operators
    "\u2066-\u2069"  # bidi isolates
    "\ufeff"  # zero-width no-break space (byte order mark)
    "]"
)


def normalise_text(values: pd.Series) -> pd.Series:
    """NFKC-normalise ``values`` and remove invisible format characters (see the module docstring).

    Only values with a non-ASCII character are touched (ASCII is NFKC-stable), so typical batches cost one scan.

    Args:
        values: Object Series of ``str`` or ``None``.

    Returns:
        The normalised values on the same index (``None`` stays ``None``).
    """
    if values.empty:
        return values
    text = pa.array(values.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    unusual = pc.fill_null(pc.invert(pc.string_is_ascii(text)), False).to_numpy(zero_copy_only=False)
    positions = np.flatnonzero(unusual)
    if not len(positions):
        return values
    fixed = pc.replace_substring_regex(pc.utf8_normalize(text.take(positions), form="NFKC"), INVISIBLE, "")
    result = values.copy()
    result.iloc[positions] = np.asarray(fixed.to_pylist(), dtype=object)
    return result
