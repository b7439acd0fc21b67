/** Imported first by boot-phases.ts: the moment its code starts running, before the app's modules load. */
export const marks: Record<string, number> = { scriptStart: performance.now() };
