/** The time as the service sees it. Tests pass their own to move time forward without waiting. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** OVH's datetime format: ISO-8601 with an explicit offset and no fraction, e.g. `2024-06-07T13:05:14+00:00`. */
export function toOvhDate(date: Date): string;
export function toOvhDate(date: Date | null): string | null;
export function toOvhDate(date: Date | null): string | null {
  return date === null ? null : date.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}
