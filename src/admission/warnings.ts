/** The apiserver shows warnings to clients verbatim; keep them short, attributed and few. */
export const WARNING_PREFIX = "app-snapshots: ";
export const MAX_WARNING_LENGTH = 199;
export const MAX_WARNINGS = 10;

export function formatWarnings(messages: readonly string[]): string[] {
  const shorten = (text: string) => {
    const full = WARNING_PREFIX + text.replace(/[\r\n]+/g, " ");
    return full.length <= MAX_WARNING_LENGTH ? full : `${full.slice(0, MAX_WARNING_LENGTH - 1)}…`;
  };
  if (messages.length <= MAX_WARNINGS) return messages.map(shorten);
  const shown = messages.slice(0, MAX_WARNINGS - 1).map(shorten);
  return [...shown, `${WARNING_PREFIX}and ${messages.length - shown.length} more`];
}
