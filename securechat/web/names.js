// The name rule of securechat/protocol/names.py for user and room names, kept in step with
// it by the shared cases in tests/vectors/names.json: trimmed, lowercased, then 2-32 of
// a-z 0-9 . _ -. The page checks a name before it sends join, create or a direct message.

export const NAME_MIN = 2;
export const NAME_MAX = 32;
const NAME = new RegExp(`^[a-z0-9._-]{${NAME_MIN},${NAME_MAX}}$`);

export const NAME_RULE = `${NAME_MIN}-${NAME_MAX} characters: lowercase letters a-z, digits 0-9, '.', '_' or '-'`;

// The canonical (lowercase) form of `raw`, or null when it breaks the rule.
export function normalizeName(raw) {
  const name = raw.trim().toLowerCase();
  return NAME.test(name) ? name : null;
}

// A name as typed with its sigil ("#ops", "@bob"), or null.
export function typedName(raw, sigil) {
  const text = raw.trim();
  return normalizeName(text.startsWith(sigil) ? text.slice(sigil.length) : text);
}
