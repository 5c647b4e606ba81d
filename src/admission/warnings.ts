/** The apiserver shows warnings to clients verbatim; keep them short, attributed and few. */
export const WARNING_PREFIX = "app-snapshots: ";
export const MAX_WARNING_LENGTH = 199;
export const MAX_WARNINGS = 10;

/**
 * Warnings travel in HTTP Warning headers, which clients decode as Latin-1: anything outside
 * printable ASCII (a smart quote pasted into a hook command, say) is shown as a \uXXXX escape.
 */
export function formatWarnings(messages: readonly string[]): string[] {
  const ascii = (text: string) => text.replace(/[\r\n\t]+/g, " ").replace(/[^\x20-\x7e]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const shorten = (text: string) => {
    const full = WARNING_PREFIX + ascii(text);
    return full.length <= MAX_WARNING_LENGTH ? full : `${full.slice(0, MAX_WARNING_LENGTH - 3)}...`;
  };
  if (messages.length <= MAX_WARNINGS) return messages.map(shorten);
  const shown = messages.slice(0, MAX_WARNINGS - 1).map(shorten);
  return [...shown, `${WARNING_PREFIX}and ${messages.length - shown.length} more`];
}
