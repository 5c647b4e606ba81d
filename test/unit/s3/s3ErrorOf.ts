import { expect } from "vitest";
import { S3Error } from "../../../src/s3/errors.js";

/** The S3Error a call throws (fails the test when it throws something else or nothing). */
export function s3ErrorOf(call: () => unknown): S3Error {
  try {
    call();
  } catch (err) {
    expect(err).toBeInstanceOf(S3Error);
    return err as S3Error;
  }
  throw new Error("expected an S3Error, nothing was thrown");
}
