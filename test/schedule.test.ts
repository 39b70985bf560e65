import { expectInvalid } from "./support/errors.ts";
import { describe, expect, it } from "vitest";
import { PitstopError } from "../src/errors.ts";
import {
  addDuration,
  backoffMs,
  durationMs,
  formatTime,
  isFixedDuration,
  nextOccurrenceAfter,
  parseDuration,
  parseTime,
} from "../src/schedule.ts";

const t = (iso: string) => Date.parse(iso);


describe("parseTime", () => {
  it("accepts timestamps with an offset, Dates and epoch milliseconds", () => {
    expect(parseTime("2026-01-01T10:00:00Z")).toBe(t("2026-01-01T10:00:00.000Z"));
    expect(parseTime("2026-01-01T10:00:00.123+02:00")).toBe(t("2026-01-01T08:00:00.123Z"));
    expect(parseTime("2026-01-01T10:00-05:30")).toBe(t("2026-01-01T15:30:00.000Z"));
    expect(parseTime("2026-01-01T10:00:00.123456Z")).toBe(t("2026-01-01T10:00:00.123Z"));
    expect(parseTime("2028-02-29T00:00:00Z")).toBe(t("2028-02-29T00:00:00Z"));
    expect(parseTime("0050-06-01T00:00:00Z")).toBe(new Date("0050-06-01T00:00:00Z").getTime());
    expect(parseTime(new Date("2026-01-01T10:00:00Z"))).toBe(t("2026-01-01T10:00:00Z"));
    expect(parseTime(1_767_261_600_000)).toBe(1_767_261_600_000);
    expect(parseTime(0)).toBe(0);
  });

  it.each([
    ["a date without a time", "2026-01-01"],
    ["a timestamp without an offset", "2026-01-01T10:00:00"],
    ["a numeric string", "1767261600000"],
    ["an offset without a colon", "2026-01-01T10:00:00+0200"],
    ["an impossible date", "2026-02-29T10:00:00Z"],
    ["an impossible hour", "2026-01-01T24:00:00Z"],
    ["free text", "tomorrow"],
    ["a fractional number", 1.5],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["an invalid Date", new Date("nope")],
    ["null", null],
    ["an object", {}],
  ])("rejects %s", (_, input) => {
    expectInvalid(() => parseTime(input), /^at must be an ISO-8601 timestamp with an offset, or epoch milliseconds$/);
  });

  it("names the given field and rejects times outside the Date range", () => {
    expectInvalid(() => parseTime("2026-01-01", "end"), /^end must be/);
    expectInvalid(() => parseTime(8.64e15 + 1, "start"), /^start is out of the supported time range$/);
  });
});

describe("parseDuration", () => {
  it.each([
    [500, "PT0.5S"],
    [1, "PT0.001S"],
    [1000, "PT1S"],
    [90_000, "PT1M30S"],
    [3_600_000, "PT1H"],
    [86_400_000, "PT24H"],
    [90_061_250, "PT25H1M1.25S"],
  ])("converts %d ms to %s", (ms, iso) => {
    expect(parseDuration(ms)).toBe(iso);
  });

  it.each([
    ["PT1H0M", "PT1H"],
    ["P1Y2M3W4DT5H6M7.25S", "P1Y2M3W4DT5H6M7.25S"],
    ["P2W", "P2W"],
    ["P0Y1M", "P1M"],
    ["PT01H", "PT1H"],
    ["PT1.500S", "PT1.5S"],
    ["PT90M", "PT90M"],
  ])("normalizes %s to %s", (input, output) => {
    expect(parseDuration(input)).toBe(output);
  });

  it.each(["pt1h", "P", "PT", "P1DT", "P1H", "-PT1H", "P1.5D", "PT1,5S", "PT0.0001S", "1000", "", 0, -1000, 1.5, Number.NaN, null])(
    "rejects %j",
    (input) => {
      expectInvalid(() => parseDuration(input), /^interval must be/);
    },
  );

  it("rejects zero and overflowing durations, naming the field", () => {
    expectInvalid(() => parseDuration("PT0S"), /^interval must be longer than zero$/);
    expectInvalid(() => parseDuration("P0D", "every"), /^every must be longer than zero$/);
    expectInvalid(() => parseDuration("P999999999Y"), /^interval is too long$/);
    expectInvalid(() => parseDuration(`PT${"9".repeat(400)}S`), /^interval is too long$/);
    expectInvalid(() => parseDuration(Number.MAX_SAFE_INTEGER), /^interval is too long$/);
  });
});

describe("addDuration", () => {
  it("clamps to the month end without drifting", () => {
    const start = t("2026-01-31T09:30:00Z");
    expect(formatTime(addDuration(start, "P1M"))).toBe("2026-02-28T09:30:00.000Z");
    expect(formatTime(addDuration(start, "P1M", 2))).toBe("2026-03-31T09:30:00.000Z");
    expect(formatTime(addDuration(t("2028-01-31T00:00:00Z"), "P1M"))).toBe("2028-02-29T00:00:00.000Z");
    expect(formatTime(addDuration(t("2028-02-29T00:00:00Z"), "P1Y"))).toBe("2029-02-28T00:00:00.000Z");
    expect(formatTime(addDuration(start, "P1M", -2))).toBe("2025-11-30T09:30:00.000Z");
    const days = Array.from({ length: 12 }, (_, k) => new Date(addDuration(start, "P1M", k)).getUTCDate());
    expect(days).toEqual([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
    expect(formatTime(addDuration(start, "P1M", 1200))).toBe("2126-01-31T09:30:00.000Z");
  });

  it("adds weeks, days and time as exact milliseconds, after the calendar part", () => {
    const start = t("2026-01-31T00:00:00Z");
    expect(addDuration(start, "PT1H30M", 3)).toBe(start + 4.5 * 3_600_000);
    expect(formatTime(addDuration(start, "P1W2D"))).toBe("2026-02-09T00:00:00.000Z");
    expect(formatTime(addDuration(start, "P1M1DT0.5S"))).toBe("2026-03-01T00:00:00.500Z");
    expect(formatTime(addDuration(t("0099-12-31T00:00:00Z"), "P1M"))).toBe("0100-01-31T00:00:00.000Z");
  });

  it("rejects results outside the supported time range", () => {
    expectInvalid(() => addDuration(0, "P200000Y", 2), /out of the supported time range/);
    expectInvalid(() => addDuration(0, "PT1H", 1e12), /out of the supported time range/);
  });
});

describe("fixed durations", () => {
  it("treats weeks and days as fixed, years and months as calendar units", () => {
    expect(isFixedDuration("P1W2DT3H")).toBe(true);
    expect(isFixedDuration("P1M")).toBe(false);
    expect(isFixedDuration("P1Y")).toBe(false);
    expect(durationMs("P1W")).toBe(604_800_000);
    expect(durationMs("PT1M30.5S")).toBe(90_500);
  });

  it("refuses a calendar duration where a length is needed", () => {
    expectInvalid(() => durationMs("P1M", "lockTime"), /^lockTime must not use years or months$/);
    expectInvalid(() => durationMs("P1Y2D"), /^duration must not use years or months$/);
  });
});

describe("nextOccurrenceAfter", () => {
  const start = t("2026-01-01T10:00:00Z");

  it("returns the start while it is still ahead", () => {
    expect(nextOccurrenceAfter(start, "PT1H", start - 1)).toBe(start);
  });

  it("is strictly after: an occurrence equal to `after` is skipped", () => {
    expect(nextOccurrenceAfter(start, "PT1H", start)).toBe(start + 3_600_000);
    expect(nextOccurrenceAfter(start, "PT1H", start + 3_600_000)).toBe(start + 7_200_000);
    expect(nextOccurrenceAfter(start, "PT1H", start + 3_599_999)).toBe(start + 3_600_000);
  });

  it("follows the month-end clamped sequence for calendar intervals", () => {
    const jan31 = t("2026-01-31T00:00:00Z");
    expect(formatTime(nextOccurrenceAfter(jan31, "P1M", jan31))).toBe("2026-02-28T00:00:00.000Z");
    expect(formatTime(nextOccurrenceAfter(jan31, "P1M", t("2026-02-28T00:00:00Z")))).toBe("2026-03-31T00:00:00.000Z");
    expect(formatTime(nextOccurrenceAfter(jan31, "P1M", t("2026-03-30T23:59:59.999Z")))).toBe(
      "2026-03-31T00:00:00.000Z",
    );
    const old = t("1026-01-31T00:00:00Z");
    expect(formatTime(nextOccurrenceAfter(old, "P1M", t("2026-03-15T00:00:00Z")))).toBe("2026-03-31T00:00:00.000Z");
    expect(formatTime(nextOccurrenceAfter(old, "P1Y", t("2026-01-31T00:00:00Z")))).toBe("2027-01-31T00:00:00.000Z");
  });

  it("handles gaps of years quickly and exactly", () => {
    const tenYearsAgo = t("2016-03-07T12:34:56.789Z");
    const began = performance.now();
    for (let i = 0; i < 1000; i++) {
      const after = t("2026-03-07T00:00:00Z") + i * 7_919;
      const next = nextOccurrenceAfter(tenYearsAgo, "PT1M", after);
      expect(next).toBeGreaterThan(after);
      expect(next - 60_000).toBeLessThanOrEqual(after);
      expect((next - tenYearsAgo) % 60_000).toBe(0);
      const monthly = nextOccurrenceAfter(tenYearsAgo, "P1M", after);
      expect(monthly).toBeGreaterThan(after);
      expect(addDuration(monthly, "P1M", -1)).toBeLessThanOrEqual(after);
    }
    // Stepping through ten years of minutes would take minutes; a loaded CI still stays far below this.
    expect(performance.now() - began).toBeLessThan(5000);
  });
});

describe("formatTime", () => {
  it("formats UTC with milliseconds", () => {
    expect(formatTime(t("2026-01-01T10:00:00+02:00"))).toBe("2026-01-01T08:00:00.000Z");
    expect(() => formatTime(Number.NaN)).toThrow(PitstopError);
  });
});

describe("backoffMs", () => {
  it("doubles from one second and stops at the cap", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 60_000))).toEqual([1000, 2000, 4000, 8000, 16_000]);
    expect(backoffMs(5, 10_000)).toBe(10_000);
    expect(backoffMs(2000, 300_000)).toBe(300_000);
  });
});
