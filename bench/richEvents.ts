/**
 * Events as rich as real clickstream, for the CPU figures: every optional field on every event,
 * long URLs and referrers with query strings (UTM tags, click ids, percent-encoded searches), a
 * browser's full user agent, a nested `properties` object (product, cart lines, screen, consent,
 * experiments) and non-ASCII text (product names and searches in German, French, Japanese, with an
 * emoji now and then), and now and then a quote or a backslash that JSON escapes. The generator's
 * retail events (the "light" mix) carry about half the fields and properties on some events only.
 * Seeded, so a seed names one exact list.
 */
import { createRng, type Rng } from '../src/generator/prng.js';
import { isoWithOffset, uuidV7 } from '../src/generator/retail.js';

const TYPES = ['page_view', 'page_view', 'page_view', 'product_view', 'click', 'add_to_cart', 'search', 'checkout', 'purchase'] as const;
const COUNTRIES = ['DE', 'FR', 'JP', 'US', 'GB', 'SE', 'BR', 'ES'] as const;
const OFFSETS: Record<string, number> = { DE: 60, FR: 60, JP: 540, US: -300, GB: 0, SE: 60, BR: -180, ES: 60 };
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36',
] as const;
const PRODUCTS = [
  'Laufschuh „Größe 42“ – wasserdicht',
  'Veste légère à capuche, été',
  '東京スニーカー ホワイト 26.5cm',
  'Kaffeebecher ☕ 350 ml',
  'Ensemble de 3 bols en céramique émaillée',
  'Rucksack 20 l, grün',
  '12" pizza stone with "easy grip" handles',
  'Écharpe en laine mérinos',
  'Backpack \\ carry-on edition',
  'Sommerkleid 🌸 Baumwolle',
] as const;
const SEARCHES = ['wanderschuhe damen größe 39', 'sac à dos étanche', 'スニーカー 白', 'regenjacke', 'café moulu bio', 'gift for dad 🎁'] as const;
const CATEGORIES = ['Schuhe', 'Vêtements', 'キッチン', 'Outdoor', 'Maison & Jardin', 'Accessoires'] as const;
const SOURCES = ['google', 'newsletter', 'facebook', 'instagram', 'bing', 'affiliate'] as const;

function hex(rng: Rng, n: number): string {
  return rng.bytes(Math.ceil(n / 2)).toString('hex').slice(0, n);
}

function product(rng: Rng): Record<string, unknown> {
  return {
    sku: `SKU-${hex(rng, 8).toUpperCase()}`,
    name: rng.pick(PRODUCTS),
    category: rng.pick(CATEGORIES),
    price: rng.int(50_000) / 100 + 1,
    currency: 'EUR',
    variant: { size: rng.pick(['S', 'M', 'L', 'XL', '42', '26.5']), colour: rng.pick(['schwarz', 'blanc cassé', '白', 'navy']) },
    tags: ['sale', rng.pick(['neu', 'nouveau', '新着', 'bestseller'])],
  };
}

/** One rich event as producers send it (the object; its JSON is the body). */
export function richEvent(rng: Rng, ms: number, tenants: number): Record<string, unknown> {
  const country = rng.pick(COUNTRIES);
  const type = rng.pick(TYPES);
  const p = product(rng);
  const search = rng.pick(SEARCHES);
  const campaign = `cmp-${rng.pick(SOURCES)}-${hex(rng, 6)}`;
  const path = `/${encodeURIComponent(String(p.category)).toLowerCase()}/${String(p.sku).toLowerCase()}`;
  const query =
    `utm_source=${rng.pick(SOURCES)}&utm_medium=cpc&utm_campaign=${campaign}&utm_content=${hex(rng, 10)}` +
    `&gclid=${hex(rng, 40)}&q=${encodeURIComponent(search)}&ref=home_banner&lang=${country.toLowerCase()}`;
  const quantity = 1 + rng.int(3);
  const properties: Record<string, unknown> = {
    product: p,
    cart: {
      items: Array.from({ length: 1 + rng.int(3) }, () => ({ sku: `SKU-${hex(rng, 8).toUpperCase()}`, quantity: 1 + rng.int(4), price: rng.int(20_000) / 100 })),
      total: rng.int(100_000) / 100,
    },
    search: { query: search, results: rng.int(400) },
    screen: { width: rng.pick([390, 1280, 1440, 1920]), height: rng.pick([844, 720, 900, 1080]), dpr: rng.pick([1, 2, 3]) },
    consent: { analytics: true, ads: rng.chance(0.6) },
    experiments: [`checkout-${rng.int(4)}`, `hero-${rng.pick(['a', 'b'])}`],
    quantity,
  };
  return {
    eventId: uuidV7(ms, rng),
    tenantId: 1 + rng.int(tenants),
    type,
    occurredAt: isoWithOffset(ms, OFFSETS[country] ?? 0),
    sessionId: `s-${hex(rng, 24)}`,
    userId: `u-${hex(rng, 16)}`,
    deviceId: `d-${hex(rng, 32)}`,
    url: `https://shop-${rng.int(tenants)}.example.com${path}?${query}`,
    referrer: `https://www.google.com/search?q=${encodeURIComponent(search)}&sca_esv=${hex(rng, 16)}&source=hp&ei=${hex(rng, 22)}&oq=${encodeURIComponent(search.slice(0, 5))}`,
    campaignId: campaign,
    country,
    browser: rng.pick(AGENTS),
    revenue: type === 'purchase' ? rng.int(500_000) / 100 : 0,
    properties,
  };
}

/** n rich event bodies (JSON, UTF-8), their times spread over the last `spanMs` before `nowMs`. */
export function richBodies(n: number, seed: string, nowMs: number, tenants = 500, spanMs = 3_600_000): Buffer[] {
  const rng = createRng(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) out.push(Buffer.from(JSON.stringify(richEvent(rng, nowMs - spanMs + Math.floor((i * spanMs) / n), tenants)), 'utf8'));
  return out;
}
