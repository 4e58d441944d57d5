/**
 * The arithmetic of a windowed list with rows of varying height: only rows
 * near the viewport are rendered, the rest are replaced by two spacers. Rows
 * not yet measured count as `estimate`.
 */
export interface WindowRange {
  start: number;
  /** Exclusive. */
  end: number;
  padTop: number;
  padBottom: number;
  total: number;
}

/** offsets[i] = top of row i; offsets[n] = total height. */
export function offsetsFor(heights: readonly (number | undefined)[], estimate: number): number[] {
  const offsets = new Array<number>(heights.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < heights.length; i++) offsets[i + 1] = offsets[i]! + (heights[i] ?? estimate);
  return offsets;
}

/** Index of the row containing position y (clamped). */
export function rowAt(offsets: readonly number[], y: number): number {
  const n = offsets.length - 1;
  if (n <= 0) return 0;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid]! <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function visibleRange(
  offsets: readonly number[],
  scrollTop: number,
  viewportHeight: number,
  overscanPx: number,
): WindowRange {
  const n = offsets.length - 1;
  const total = offsets[n] ?? 0;
  if (n <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0, total };
  const start = rowAt(offsets, Math.max(0, scrollTop - overscanPx));
  const end = Math.min(n, rowAt(offsets, scrollTop + viewportHeight + overscanPx) + 1);
  return { start, end, padTop: offsets[start]!, padBottom: total - offsets[end]!, total };
}
