/**
 * Text that reaches an operator's terminal. Producers control much of what hubsink prints (event
 * bodies, parse errors that quote them, application properties, partition keys), and a terminal
 * obeys control sequences: ESC and the 8-bit C1 controls start them (OSC 52 writes the clipboard,
 * CSI moves the cursor and rewrites what is shown), CR and BS overwrite a line. Every
 * human-readable output goes through `escapeControls`; `--json` output is left exact (JSON
 * consumers, not terminals, read it).
 */

// C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F).
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Pure: C0, DEL and C1 characters as visible escapes (`\x1b`, `\x7f`, `\u009b`), so they are shown
 * rather than obeyed. `multiline` keeps LF and TAB, for text that is meant to span lines (a body).
 */
export function escapeControls(s: string, opts: { multiline?: boolean } = {}): string {
  return s.replace(CONTROLS, (c) => {
    if (opts.multiline && (c === '\n' || c === '\t')) return c;
    const code = c.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Pure: secrets in text for people (a banner, a debug dump of an error) replaced by `***`: the
 * password of a postgres:// URL, the values of SharedAccessKey=, SharedAccessSignature= and
 * AccountKey= in connection strings, the sig= of a SAS token, and password fields of inspected
 * objects. Names, hosts and ports stay, so the text still says where things point.
 */
export function redactSecrets(s: string): string {
  return s
    .replace(/(postgres(?:ql)?:\/\/[^:@/\s'"]*:)[^@\s'"]*@/gi, '$1***@')
    .replace(/\b(SharedAccessKey|SharedAccessSignature|AccountKey)(\s*=\s*)[^;'"\n]+/gi, '$1$2***')
    .replace(/([?&\s]sig=)[^&\s'";]+/gi, '$1***')
    .replace(/\b(password|PGPASSWORD)(['"]?\s*[:=]\s*)(['"]?)[^'"\s,}]*\3/gi, '$1$2$3***$3');
}
