import { createHash, timingSafeEqual } from "node:crypto";
import { hostname, networkInterfaces } from "node:os";
import { isLoopback } from "../config/load.js";

/** A Host header's name, lower-case, without its port or the brackets of an IPv6 address. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(1, h.indexOf("]"));
  return h.replace(/:\d*$/, "");
}

/**
 * The names a request's Host (or Origin) may carry: loopback, the address the server
 * listens on (on a wildcard address, this machine's name and addresses) and
 * `allowed_hosts`. Anything else is a request meant for another site, such as a
 * DNS-rebinding page's.
 */
export function allowedHostNames(http: {
  host: string;
  allowed_hosts: readonly string[];
}): (name: string) => boolean {
  const names = new Set(http.allowed_hosts.map((h) => hostName(h)));
  const listen = hostName(http.host);
  if (listen === "0.0.0.0" || listen === "::") {
    names.add(hostname().toLowerCase());
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) names.add(a.address.toLowerCase());
  } else names.add(listen);
  return (name) => isLoopback(name) || names.has(name);
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Compares a presented key with ours in constant time. */
export function keyMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * Whether a request's Origin is a page of the very server it asks (the same host and port
 * as its Host): no other site's page, nor another port of this machine, may act on it.
 */
export function originMatchesHost(origin: string, host: string | undefined): boolean {
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return false;
  }
  return originHost !== "" && originHost === host?.toLowerCase();
}
