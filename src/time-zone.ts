/**
 * Time zones by their IANA names, through Intl only: the store and the API keep UTC ISO
 * strings, and a person reads and types deadlines in their own zone.
 */

/** The zone this machine's clock is set to. */
export function machineZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** A zone's canonical IANA name ("europe/moscow" → "Europe/Moscow"), or undefined when unknown. */
export function canonicalZone(name: string): string | undefined {
  if (!/^[A-Za-z][\w+\-/]*$/.test(name)) return undefined;
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** Minutes east of UTC of `zone` at the instant `at` (daylight saving included). */
export function offsetMinutes(zone: string, at: Date): number {
  const name = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "longOffset" })
    .formatToParts(at)
    .find((p) => p.type === "timeZoneName")?.value;
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name ?? "");
  return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

/** "UTC+03:00", the zone's offset at `at`. */
export function offsetLabel(zone: string, at: Date): string {
  const minutes = offsetMinutes(zone, at);
  const sign = minutes < 0 ? "-" : "+";
  const abs = Math.abs(minutes);
  return `UTC${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

// Cities people type in Russian, for zones whose names are English.
const russianCities: Record<string, string> = {
  москва: "Europe/Moscow",
  "санкт-петербург": "Europe/Moscow",
  петербург: "Europe/Moscow",
  калининград: "Europe/Kaliningrad",
  самара: "Europe/Samara",
  екатеринбург: "Asia/Yekaterinburg",
  омск: "Asia/Omsk",
  новосибирск: "Asia/Novosibirsk",
  красноярск: "Asia/Krasnoyarsk",
  иркутск: "Asia/Irkutsk",
  якутск: "Asia/Yakutsk",
  владивосток: "Asia/Vladivostok",
  минск: "Europe/Minsk",
  киев: "Europe/Kyiv",
  алматы: "Asia/Almaty",
  ташкент: "Asia/Tashkent",
  тбилиси: "Asia/Tbilisi",
  ереван: "Asia/Yerevan",
  баку: "Asia/Baku",
};

/**
 * What a person sent for their zone: an IANA name ("Europe/Berlin"), a city ("Moscow",
 * "new york", "Москва"), UTC or a whole-hour offset ("UTC+3", "+03:00", "GMT-5").
 */
export function zoneFromInput(input: string): string | undefined {
  const text = input.trim();
  if (/^(utc|gmt|z)$/i.test(text)) return "UTC";
  const offset = /^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(00))?$/i.exec(text);
  if (offset) {
    const hours = Number(offset[2]);
    if (hours === 0) return "UTC";
    // Etc/GMT zones count the other way: UTC+3 is Etc/GMT-3.
    return hours <= 14 ? canonicalZone(`Etc/GMT${offset[1] === "+" ? "-" : "+"}${hours}`) : undefined;
  }
  const named = canonicalZone(text.replace(/\s+/g, "_"));
  if (named) return named;
  const city = text.toLowerCase().replace(/\s+/g, "_");
  const byCity = Intl.supportedValuesOf("timeZone").find((z) => z.split("/").pop()!.toLowerCase() === city);
  return byCity ?? russianCities[text.toLowerCase()];
}

/**
 * A deadline as a person reads it, in their zone and language: "Sun 29 Nov 18:00
 * (Europe/Moscow)"; the year is added when it is not this year's.
 */
export function formatInZone(when: string | Date, zone: string, locale = "en", now = new Date()): string {
  const date = typeof when === "string" ? new Date(when) : when;
  const parts = (d: Date, options: Intl.DateTimeFormatOptions) =>
    Object.fromEntries(
      new Intl.DateTimeFormat(locale === "ru" ? "ru-RU" : "en-GB", { timeZone: zone, ...options })
        .formatToParts(d)
        .map((p) => [p.type, p.value]),
    );
  const p = parts(date, {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  const thisYear = parts(now, { year: "numeric" }).year;
  const year = p.year === thisYear ? "" : ` ${p.year}`;
  return `${p.weekday} ${p.day} ${p.month}${year} ${p.hour}:${p.minute} (${zoneLabel(zone, date)})`;
}

/** A zone's name as a person reads it: its IANA name, or "UTC+03:00" for a bare offset. */
export function zoneLabel(zone: string, at = new Date()): string {
  return zone.startsWith("Etc/") ? offsetLabel(zone, at) : zone;
}
