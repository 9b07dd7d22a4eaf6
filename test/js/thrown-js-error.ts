import assert from "node:assert/strict";
import { JsError } from "../../src/js/index.ts";

/** The JsError `fn` throws; any other error is rethrown, and no error at all fails the test. */
export function thrownJsError(fn: () => unknown): JsError {
  try {
    fn();
  } catch (error) {
    if (error instanceof JsError) return error;
    throw error;
  }
  assert.fail("expected a JsError");
}
