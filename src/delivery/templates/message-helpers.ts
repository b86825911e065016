/**
 * JavaScript shared by the chat templates, written into each template's code (a transformation is one
 * self-contained script: it can import nothing). Kept short and plain, since a user edits it.
 */
export const MESSAGE_HELPERS = `// --- helpers (edit freely) ---------------------------------------------------
const MAX_FIELDS = 10;     // top-level data fields shown
const MAX_VALUE = 200;     // characters of each value shown

/** "user.registered" -> "User registered" */
function title(eventType) {
  const words = String(eventType).replace(/[._]+/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A value as short text: strings as they are, anything else as JSON. */
function show(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return clip(text === undefined ? String(value) : text, MAX_VALUE);
}

/** The data's top-level fields as [name, text] pairs, at most MAX_FIELDS (and how many were left out). */
function fields(data) {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { list: [['data', show(data)]], more: 0 };
  const keys = Object.keys(data);
  return { list: keys.slice(0, MAX_FIELDS).map((k) => [k, show(data[k])]), more: Math.max(0, keys.length - MAX_FIELDS) };
}

function clip(text, max) {
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}
`;
