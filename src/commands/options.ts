/** A repeatable commander option: each use appends to the list. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];
