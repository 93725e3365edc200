import { I18n, type I18nFlavor } from "@grammyjs/i18n";
import type { Context } from "grammy";
import path from "node:path";
import { packageDir } from "../package-dir.js";

/** A message key and its variables, translated where the user's language is known. */
export interface Msg {
  key: string;
  vars?: Record<string, string | number>;
}

export type Translate = (key: string, vars?: Record<string, string | number>) => string;

/** English and Russian from locales/*.ftl, chosen by the user's Telegram language. */
export function createI18n(): I18n<Context & I18nFlavor> {
  return new I18n<Context & I18nFlavor>({
    defaultLocale: "en",
    directory: path.join(packageDir, "locales"),
    // No invisible isolation marks around values: they would show in a console.
    fluentBundleOptions: { useIsolating: false },
  });
}

/** A translator for one language, for messages sent outside an update (progress, alerts). */
export function translatorFor(i18n: I18n<Context & I18nFlavor>, locale: string | undefined): Translate {
  const lang = locale && i18n.locales.includes(locale) ? locale : "en";
  return (key, vars) => i18n.t(lang, key, vars);
}
