import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NotImplementedError, param, parseQuery, route, UNSUPPORTED_SUBRESOURCES, type Operation } from "../../../src/s3/routing.js";
import { s3ErrorOf } from "./s3ErrorOf.js";


const DOMAINS = ["s3.example.test"];

describe("route: path style", () => {
  const cases: Array<[method: string, target: string, operation: Operation, bucket: string, key: string, copySource?: string]> = [
    ["GET", "/", "ListBuckets", "", ""],
    ["HEAD", "/", "ListBuckets", "", ""],
    ["GET", "/bkt", "ListObjects", "bkt", ""],
    ["GET", "/bkt/", "ListObjects", "bkt", ""],
    ["GET", "/bkt?location", "GetBucketLocation", "bkt", ""],
    ["GET", "/bkt/?location=", "GetBucketLocation", "bkt", ""],
    ["GET", "/bkt?versioning", "GetBucketVersioning", "bkt", ""],
    ["GET", "/bkt?uploads", "ListMultipartUploads", "bkt", ""],
    ["GET", "/bkt/?uploads=&prefix=a", "ListMultipartUploads", "bkt", ""],
    ["GET", "/bkt?versions", "ListObjectVersions", "bkt", ""],
    ["GET", "/bkt?list-type=2", "ListObjectsV2", "bkt", ""],
    ["GET", "/bkt/?list-type=2&prefix=uploads&delimiter=%2F&x-id=ListObjectsV2", "ListObjectsV2", "bkt", ""],
    ["GET", "/bkt?prefix=location&marker=versions", "ListObjects", "bkt", ""],
    ["HEAD", "/bkt", "HeadBucket", "bkt", ""],
    ["HEAD", "/bkt/", "HeadBucket", "bkt", ""],
    ["PUT", "/bkt", "CreateBucket", "bkt", ""],
    ["PUT", "/bkt/", "CreateBucket", "bkt", ""],
    ["DELETE", "/bkt", "DeleteBucket", "bkt", ""],
    ["DELETE", "/bkt/", "DeleteBucket", "bkt", ""],
    ["POST", "/bkt?delete", "DeleteObjects", "bkt", ""],
    ["POST", "/bkt/?delete=", "DeleteObjects", "bkt", ""],
    ["GET", "/bkt/key", "GetObject", "bkt", "key"],
    ["GET", "/bkt/key?versionId=null&x-id=GetObject", "GetObject", "bkt", "key"],
    ["GET", "/bkt/key?uploadId=U1", "ListParts", "bkt", "key"],
    ["HEAD", "/bkt/key", "HeadObject", "bkt", "key"],
    ["PUT", "/bkt/key", "PutObject", "bkt", "key"],
    ["PUT", "/bkt/key?x-id=PutObject", "PutObject", "bkt", "key"],
    ["PUT", "/bkt/key", "CopyObject", "bkt", "key", "/src/obj"],
    ["PUT", "/bkt/key?x-id=CopyObject", "CopyObject", "bkt", "key", "src/obj"],
    ["PUT", "/bkt/key?partNumber=1&uploadId=U1", "UploadPart", "bkt", "key"],
    ["PUT", "/bkt/key?partNumber=3&uploadId=U1&x-id=UploadPart", "UploadPart", "bkt", "key"],
    ["PUT", "/bkt/key?uploadId=U1", "UploadPart", "bkt", "key"],
    ["PUT", "/bkt/key?partNumber=2&uploadId=U1", "UploadPartCopy", "bkt", "key", "/src/obj"],
    ["DELETE", "/bkt/key", "DeleteObject", "bkt", "key"],
    ["DELETE", "/bkt/key?x-id=DeleteObject", "DeleteObject", "bkt", "key"],
    ["DELETE", "/bkt/key?uploadId=U1", "AbortMultipartUpload", "bkt", "key"],
    ["POST", "/bkt/key?uploads", "CreateMultipartUpload", "bkt", "key"],
    ["POST", "/bkt/key?uploads=&x-id=CreateMultipartUpload", "CreateMultipartUpload", "bkt", "key"],
    ["POST", "/bkt/key?uploadId=U1", "CompleteMultipartUpload", "bkt", "key"],
    ["GET", "/bkt/dir/sub/file.txt", "GetObject", "bkt", "dir/sub/file.txt"],
    ["GET", "/bkt/dir/", "GetObject", "bkt", "dir/"],
    ["GET", "/bkt//lead", "GetObject", "bkt", "/lead"],
    ["GET", "/bkt/a%20b", "GetObject", "bkt", "a b"],
    ["GET", "/bkt/a+b", "GetObject", "bkt", "a+b"],
    ["GET", "/bkt/a%2Bb", "GetObject", "bkt", "a+b"],
    ["GET", "/bkt/%E2%82%AC%F0%9F%98%80", "GetObject", "bkt", "€😀"],
    ["GET", "/bkt/a%2Fb", "GetObject", "bkt", "a/b"],
    ["GET", "/bkt/%3F%23%26%3D", "GetObject", "bkt", "?#&="],
  ];
  it.each(cases)("%s %s → %s", (method, target, operation, bucket, key, copySource) => {
    const r = route(method, target, "localhost:9000", DOMAINS, copySource === undefined ? {} : { copySource });
    expect(r.operation).toBe(operation);
    expect(r.bucket).toBe(bucket);
    expect(r.key).toBe(key);
    expect(r.rawPath).toBe(target.split("?")[0]);
  });

  it("keeps the raw (still encoded) path for signature checks and the decoded query in order", () => {
    const r = route("GET", "/bkt/a%20b%2Bc?prefix=x%2Fy&z=1&prefix=2", undefined, []);
    expect(r.rawPath).toBe("/bkt/a%20b%2Bc");
    expect(r.key).toBe("a b+c");
    expect(r.query).toEqual([
      ["prefix", "x/y"],
      ["z", "1"],
      ["prefix", "2"],
    ]);
  });

  it("keeps '+' literal in query values (it is not a space)", () => {
    const r = route("GET", "/bkt?list-type=2&prefix=a+b&start-after=c%2Bd&delimiter=%20", undefined, []);
    expect(param(r.query, "prefix")).toBe("a+b");
    expect(param(r.query, "start-after")).toBe("c+d");
    expect(param(r.query, "delimiter")).toBe(" ");
  });

  it("ignores x-id whatever it names", () => {
    expect(route("GET", "/bkt/k?x-id=PutObject", undefined, []).operation).toBe("GetObject");
    expect(route("PUT", "/bkt/k?x-id=DeleteObject", undefined, []).operation).toBe("PutObject");
    expect(route("GET", "/bkt?x-id=GetBucketLocation", undefined, []).operation).toBe("ListObjects");
  });
});

describe("route: virtual-host style", () => {
  const cases: Array<[method: string, target: string, host: string, operation: Operation, bucket: string, key: string]> = [
    ["GET", "/", "bkt.s3.example.test", "ListObjects", "bkt", ""],
    ["GET", "/?list-type=2", "bkt.s3.example.test:9000", "ListObjectsV2", "bkt", ""],
    ["GET", "/?location", "bkt.s3.example.test", "GetBucketLocation", "bkt", ""],
    ["HEAD", "/", "bkt.s3.example.test", "HeadBucket", "bkt", ""],
    ["PUT", "/", "bkt.s3.example.test", "CreateBucket", "bkt", ""],
    ["POST", "/?delete", "bkt.s3.example.test", "DeleteObjects", "bkt", ""],
    ["GET", "/key", "bkt.s3.example.test", "GetObject", "bkt", "key"],
    ["GET", "/a/b/c", "bkt.s3.example.test", "GetObject", "bkt", "a/b/c"],
    ["GET", "/bkt/key", "bkt.s3.example.test", "GetObject", "bkt", "bkt/key"],
    ["GET", "//x", "bkt.s3.example.test", "GetObject", "bkt", "/x"],
    ["PUT", "/k?partNumber=2&uploadId=U", "bkt.s3.example.test", "UploadPart", "bkt", "k"],
    ["GET", "/k", "my.dotted.bkt.s3.example.test", "GetObject", "my.dotted.bkt", "k"],
    ["GET", "/k", "BKT.S3.Example.Test:443", "GetObject", "bkt", "k"],
  ];
  it.each(cases)("%s %s (Host %s) → %s", (method, target, host, operation, bucket, key) => {
    const r = route(method, target, host, DOMAINS);
    expect(r).toMatchObject({ operation, bucket, key });
  });

  it("falls back to path style when the Host is the domain itself, another name, absent, or no domain is configured", () => {
    for (const host of ["s3.example.test", "s3.example.test:9000", "other.example", "xs3.example.test", undefined]) {
      expect(route("GET", "/bkt/k", host, DOMAINS)).toMatchObject({ operation: "GetObject", bucket: "bkt", key: "k" });
    }
    expect(route("GET", "/bkt/k", "bkt.s3.example.test", [])).toMatchObject({ bucket: "bkt", key: "k" });
  });

  it("matches configured domains case-insensitively and tries each one", () => {
    const r = route("GET", "/k", "bkt.minio.local", ["S3.Example.Test", "MINIO.local"]);
    expect(r).toMatchObject({ bucket: "bkt", key: "k" });
  });
});

describe("route: refusals", () => {
  it("refuses a request target that is not an absolute path with InvalidURI", () => {
    for (const target of ["http://host/bkt/k", "*", "bkt/k", ""]) {
      const err = s3ErrorOf(() => route("GET", target, undefined, []));
      expect(err.code).toBe("InvalidURI");
      expect(err.status).toBe(400);
      expect(err.message).toBe("the request target must be an absolute path");
    }
  });

  it("refuses malformed percent-encoding and non-UTF-8 in the path with InvalidURI", () => {
    for (const target of ["/bkt/%zz", "/bkt/%", "/bkt/a%2", "/bkt/%C3", "/bkt/%FF%FE", "/%E0%A4%A"]) {
      const err = s3ErrorOf(() => route("GET", target, undefined, []));
      expect(err.code).toBe("InvalidURI");
      expect(err.message).toBe("the request path has malformed percent-encoding or is not UTF-8");
    }
  });

  it("refuses malformed percent-encoding in the query with InvalidURI", () => {
    for (const target of ["/bkt?prefix=%zz", "/bkt?%=1", "/bkt/k?uploadId=%C3"]) {
      const err = s3ErrorOf(() => route("GET", target, undefined, []));
      expect(err.code).toBe("InvalidURI");
      expect(err.message).toBe("the request query has malformed percent-encoding or is not UTF-8");
    }
  });

  it("refuses keys longer than 1024 UTF-8 bytes (KeyTooLongError), counting bytes, not characters", () => {
    expect(route("PUT", `/bkt/${"k".repeat(1024)}`, undefined, []).key).toHaveLength(1024);
    expect(route("PUT", `/bkt/${encodeURIComponent("é".repeat(512))}`, undefined, []).key).toBe("é".repeat(512));
    const cases: Array<[string, string | undefined, number]> = [
      [`/bkt/${"k".repeat(1025)}`, undefined, 1025],
      [`/bkt/${encodeURIComponent("é".repeat(513))}`, undefined, 1026],
      [`/${"k".repeat(1025)}`, "bkt.s3.example.test", 1025],
    ];
    for (const [target, host, bytes] of cases) {
      const err = s3ErrorOf(() => route("PUT", target, host, DOMAINS));
      expect(err.code).toBe("KeyTooLongError");
      expect(err.status).toBe(400);
      expect(err.message).toBe(`Your key is too long: ${bytes} bytes, at most 1024`);
    }
  });

  it("answers MethodNotAllowed (405) for methods an S3 resource does not have", () => {
    const cases: Array<[string, string, string]> = [
      ["PUT", "/", "PUT is not allowed on the service root"],
      ["DELETE", "/", "DELETE is not allowed on the service root"],
      ["POST", "/", "POST is not allowed on the service root"],
      ["PATCH", "/bkt", "PATCH is not allowed on a bucket"],
      ["OPTIONS", "/bkt/", "OPTIONS is not allowed on a bucket"],
      ["PATCH", "/bkt/k", "PATCH is not allowed on an object"],
      ["TRACE", "/bkt/k", "TRACE is not allowed on an object"],
      ["get", "/bkt/k", "get is not allowed on an object"],
    ];
    for (const [method, target, message] of cases) {
      const err = s3ErrorOf(() => route(method, target, undefined, []));
      expect(err.code).toBe("MethodNotAllowed");
      expect(err.status).toBe(405);
      expect(err.message).toBe(message);
    }
  });

  it("answers InvalidArgument for a list-type other than 2", () => {
    const err = s3ErrorOf(() => route("GET", "/bkt?list-type=1", undefined, []));
    expect(err.code).toBe("InvalidArgument");
    expect(err.message).toBe("list-type must be 2");
  });

  const UNSUPPORTED = [...UNSUPPORTED_SUBRESOURCES];
  it("treats the features a client must not believe applied as unsupported subresources", () => {
    for (const name of ["acl", "tagging", "object-lock", "retention", "legal-hold", "encryption", "lifecycle", "policy", "versioning-not-here"]) {
      expect(UNSUPPORTED_SUBRESOURCES.has(name), name).toBe(name !== "versioning-not-here");
    }
  });

  it.each(UNSUPPORTED)("answers NotImplemented (501) for the subresource ?%s on buckets and objects, whatever the method", (name) => {
    for (const method of ["GET", "PUT", "DELETE", "POST", "HEAD"]) {
      const onBucket = s3ErrorOf(() => route(method, `/bkt?${name}`, undefined, []));
      expect(onBucket.code).toBe("NotImplemented");
      expect(onBucket.status).toBe(501);
      expect(onBucket.message).toBe(`the bucket subresource "${name}" is not implemented by this server`);
      // GetObjectTagging is answered (an empty tag set: no object has tags); every other use of ?tagging is refused.
      if (name === "tagging" && method === "GET") continue;
      const onObject = s3ErrorOf(() => route(method, `/bkt/k?x-id=X&${name}=`, undefined, []));
      expect(onObject.code).toBe("NotImplemented");
      expect(onObject.message).toBe(`the object subresource "${name}" is not implemented by this server`);
    }
  });

  it("names each refused subresource request after its S3 operation, for metrics and logs", () => {
    const cases: Array<[string, string, string]> = [
      ["GET", "/bkt?acl", "GetBucketAcl"],
      ["PUT", "/bkt/k?tagging", "PutObjectTagging"],
      ["DELETE", "/bkt?lifecycle", "DeleteBucketLifecycleConfiguration"],
      ["POST", "/bkt/k?restore", "RestoreObject"],
      ["PUT", "/bkt?versioning", "PutBucketVersioning"],
    ];
    for (const [method, target, operation] of cases) {
      let caught: unknown;
      try {
        route(method, target, undefined, []);
      } catch (err) {
        caught = err;
      }
      expect(caught, target).toBeInstanceOf(NotImplementedError);
      expect((caught as NotImplementedError).operation).toBe(operation);
    }
    expect(route("GET", "/bkt/k?tagging", undefined, []).operation).toBe("GetObjectTagging");
  });

  it("answers NotImplemented for PutBucketVersioning and POSTs it does not know", () => {
    const cases: Array<[string, string, string, { copySource?: string }]> = [
      ["PUT", "/bkt?versioning", "PutBucketVersioning is not implemented by this server", {}],
      ["POST", "/bkt", "this POST on a bucket (browser POST uploads included) is not implemented by this server", {}],
      ["POST", "/bkt/", "this POST on a bucket (browser POST uploads included) is not implemented by this server", {}],
      ["POST", "/bkt/k", "this POST on an object is not implemented by this server", {}],
      ["POST", "/bkt/k?delete", "this POST on an object is not implemented by this server", {}],
    ];
    for (const [method, target, message, headers] of cases) {
      const err = s3ErrorOf(() => route(method, target, undefined, [], headers));
      expect(err.code).toBe("NotImplemented");
      expect(err.message).toBe(message);
    }
  });

  it("does not mistake a query value or a key for a subresource", () => {
    expect(route("GET", "/bkt?list-type=2&prefix=acl", undefined, []).operation).toBe("ListObjectsV2");
    expect(route("GET", "/bkt/acl", undefined, []).operation).toBe("GetObject");
    expect(route("GET", "/bkt/tagging?versionId=1", undefined, []).operation).toBe("GetObject");
  });
});

describe("parseQuery and param", () => {
  it("splits pairs, keeps order and duplicates, treats a bare name as an empty value", () => {
    expect(parseQuery("")).toEqual([]);
    expect(parseQuery("a")).toEqual([["a", ""]]);
    expect(parseQuery("a=")).toEqual([["a", ""]]);
    expect(parseQuery("a=b=c")).toEqual([["a", "b=c"]]);
    expect(parseQuery("=v")).toEqual([["", "v"]]);
    expect(parseQuery("&&a=1&&b&")).toEqual([
      ["a", "1"],
      ["b", ""],
    ]);
    expect(parseQuery("x=1&x=2&y=%26%3D")).toEqual([
      ["x", "1"],
      ["x", "2"],
      ["y", "&="],
    ]);
    expect(parseQuery("p=a+b%20c")).toEqual([["p", "a+b c"]]);
  });

  it("param gives the first value of a name, or undefined", () => {
    const query = parseQuery("x=1&y&x=2");
    expect(param(query, "x")).toBe("1");
    expect(param(query, "y")).toBe("");
    expect(param(query, "z")).toBeUndefined();
  });

  it("round-trips any pairs encoded with encodeURIComponent", () => {
    const text = fc.string({
      unit: fc.oneof(fc.constantFrom("&", "=", "+", "%", " ", "?", "#", "/", ";", "%2B", "%20"), fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 })),
      maxLength: 12,
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(text, text), { maxLength: 8 }), (pairs) => {
        const raw = pairs.map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`).join("&");
        expect(parseQuery(raw)).toEqual(pairs);
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips through route as well, whatever the path", () => {
    const segment = fc.string({ unit: "grapheme", minLength: 1, maxLength: 10 }).filter((s) => !s.includes("/"));
    fc.assert(
      fc.property(segment, fc.array(segment, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(fc.constantFrom("prefix", "marker", "x-id"), fc.string({ maxLength: 8 })), { maxLength: 4 }), (bucket, keyParts, pairs) => {
        const key = keyParts.join("/");
        const target = `/${encodeURIComponent(bucket)}/${keyParts.map(encodeURIComponent).join("/")}${pairs.length ? "?" : ""}${pairs.map(([n, v]) => `${n}=${encodeURIComponent(v)}`).join("&")}`;
        const r = route("GET", target, undefined, []);
        expect(r).toMatchObject({ operation: "GetObject", bucket, key });
        expect(r.query).toEqual(pairs);
      }),
      { numRuns: 300 },
    );
  });
});
