import type { NetworkInterfaceInfo } from "node:os";
import { describe, expect, it } from "vitest";
import { lvpIssuedHosts } from "../../../src/storage/lvpIssuedHosts.js";

const info = (address: string, internal = false): NetworkInterfaceInfo =>
  (address.includes(":")
    ? { address, internal, family: "IPv6", netmask: "ffff:ffff:ffff:ffff::", mac: "00:00:00:00:00:00", cidr: null, scopeid: 0 }
    : { address, internal, family: "IPv4", netmask: "255.255.255.0", mac: "00:00:00:00:00:00", cidr: null });

describe("lvpIssuedHosts", () => {
  it("is POD_IP's :3000 when it is set, as LVP's plugin signs for", () => {
    expect(lvpIssuedHosts("10.88.0.7", { eth0: [info("10.88.0.9")] })).toEqual(["10.88.0.7:3000"]);
    expect(lvpIssuedHosts("fd00::7", {})).toEqual(["[fd00::7]:3000"]);
  });

  it("without POD_IP (the sidecar LVP declares has none), is every address of the pod but loopback", () => {
    const interfaces = { lo: [info("127.0.0.1", true), info("::1", true)], eth0: [info("10.88.0.7"), info("fd00::7")], eth1: [info("10.88.0.7")] };
    expect(lvpIssuedHosts(undefined, interfaces)).toEqual(["10.88.0.7:3000", "[fd00::7]:3000"]);
    expect(lvpIssuedHosts("", { lo: [info("127.0.0.1", true)] })).toEqual([]);
  });
});
