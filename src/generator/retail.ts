/**
 * A synthetic multi-tenant retailer: storefronts with skewed (Zipf-like) traffic, shoppers whose
 * sessions browse, click, add to cart and sometimes buy, ad campaigns that show impressions and get
 * clicks, and e-mail campaigns that get sent, opened and clicked. Pure: time comes from an injected clock
 * and randomness from a seeded Rng, so a seed names one exact stream of events.
 */
import { type Rng, ZipfSampler } from './prng.js';

/** An event as producers send it (docs/design.md, "Events"); serialized to JSON by the generator. */
export interface RetailEvent {
  eventId?: string;
  tenantId: number;
  type: string;
  occurredAt: string;
  sessionId?: string;
  userId?: string;
  deviceId?: string;
  url?: string;
  referrer?: string;
  campaignId?: string;
  country?: string;
  browser?: string;
  revenue?: number;
  properties?: Record<string, unknown>;
}

interface Product {
  sku: string;
  category: string;
  price: number;
}

interface Storefront {
  tenantId: number;
  domain: string;
  currency: string;
  countries: readonly string[];
  products: readonly Product[];
  adCampaigns: readonly string[];
  emailCampaigns: readonly string[];
  /** Size of the storefront's returning-customer base, scaled with its traffic rank. */
  customers: number;
}

interface Session {
  store: Storefront;
  sessionId: string;
  userId?: string;
  deviceId: string;
  country: string;
  browser: string;
  referrer?: string;
  campaignId?: string;
  lastUrl: string;
  viewed: Product[];
  cart: { product: Product; quantity: number }[];
}

const CATEGORIES = ['shoes', 'jackets', 'shirts', 'bags', 'watches', 'toys', 'kitchen', 'garden', 'books', 'beauty'] as const;
const BROWSERS = ['chrome', 'chrome', 'chrome', 'safari', 'safari', 'firefox', 'edge', 'samsung'] as const;
const CLICK_TARGETS = ['image-gallery', 'size-guide', 'filter', 'sort', 'wishlist', 'reviews', 'banner'] as const;
const SEARCH_REFERRERS = ['https://www.google.com/', 'https://www.bing.com/', 'https://duckduckgo.com/'] as const;
const MARKETS: readonly { currency: string; countries: readonly string[] }[] = [
  { currency: 'EUR', countries: ['DE', 'FR', 'NL', 'ES', 'IT', 'AT', 'BE'] },
  { currency: 'USD', countries: ['US', 'US', 'US', 'CA'] },
  { currency: 'GBP', countries: ['GB', 'GB', 'IE'] },
  { currency: 'SEK', countries: ['SE', 'NO', 'DK', 'FI'] },
  { currency: 'BRL', countries: ['BR'] },
  { currency: 'JPY', countries: ['JP'] },
];
/** Fixed UTC offsets (minutes) per country, so some timestamps carry a non-Z offset as real clients send. */
const OFFSETS: Record<string, number> = { DE: 60, FR: 60, NL: 60, ES: 60, IT: 60, AT: 60, BE: 60, US: -300, CA: -300, GB: 0, IE: 0, SE: 60, NO: 60, DK: 60, FI: 120, BR: -180, JP: 540 };

/** A UUIDv7 (time-ordered, as docs/design.md recommends) with its random bits from the seeded Rng. */
export function uuidV7(ms: number, rng: Rng): string {
  const b = rng.bytes(16);
  const t = Math.max(0, Math.floor(ms));
  b[0] = Math.floor(t / 2 ** 40) & 0xff;
  b[1] = Math.floor(t / 2 ** 32) & 0xff;
  b[2] = (t >>> 24) & 0xff;
  b[3] = (t >>> 16) & 0xff;
  b[4] = (t >>> 8) & 0xff;
  b[5] = t & 0xff;
  b[6] = 0x70 | ((b[6] ?? 0) & 0x0f);
  b[8] = 0x80 | ((b[8] ?? 0) & 0x3f);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** ISO-8601 for an instant, written in a given UTC offset (same instant, different wall clock). */
export function isoWithOffset(ms: number, offsetMinutes: number): string {
  if (offsetMinutes === 0) return new Date(ms).toISOString();
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, -1);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

export interface RetailOptions {
  tenants: number;
  /** First tenant id; storefronts are tenantBase .. tenantBase + tenants - 1. */
  tenantBase?: number;
  /** Zipf exponent of traffic across storefronts; 0 = uniform. */
  skew?: number;
  /** Share of events sent without an eventId (the pipeline derives one from the body). */
  idlessShare?: number;
  /** Sessions in progress at once: interleaves events of many shoppers, as a live site does. */
  concurrentSessions?: number;
}

export class RetailModel {
  /** The instant each event was made for, kept apart from its body (which may write it in any offset). */
  private readonly instants = new WeakMap<RetailEvent, number>();
  private readonly stores: Storefront[] = [];
  private readonly zipf: ZipfSampler;
  private readonly sessions: Session[] = [];
  private readonly pending: RetailEvent[] = [];
  private readonly idlessShare: number;
  private readonly concurrentSessions: number;

  constructor(
    private readonly rng: Rng,
    private readonly clock: () => number,
    opts: RetailOptions,
  ) {
    if (!Number.isSafeInteger(opts.tenants) || opts.tenants < 1) throw new RangeError('tenants must be a positive integer');
    const base = opts.tenantBase ?? 1;
    if (!Number.isSafeInteger(base) || base < 1) throw new RangeError('tenantBase must be a positive integer');
    this.zipf = new ZipfSampler(opts.tenants, opts.skew ?? 1.1);
    this.idlessShare = opts.idlessShare ?? 0.02;
    this.concurrentSessions = opts.concurrentSessions ?? 64;
    const setup = rng.fork('storefronts');
    for (let rank = 1; rank <= opts.tenants; rank++) {
      const tenantId = base + rank - 1;
      const market = setup.pick(MARKETS);
      const products: Product[] = [];
      const nProducts = 40 + setup.int(400);
      for (let i = 0; i < nProducts; i++) {
        products.push({ sku: `SKU-${tenantId}-${1000 + i}`, category: setup.pick(CATEGORIES), price: round2(5 + setup.next() * setup.next() * 400) });
      }
      const adCampaigns = Array.from({ length: 2 + setup.int(5) }, (_, i) => `ad-${tenantId}-${i + 1}`);
      const emailCampaigns = Array.from({ length: 1 + setup.int(3) }, (_, i) => `mail-${tenantId}-${i + 1}`);
      this.stores.push({
        tenantId,
        domain: `shop${tenantId}.example.com`,
        currency: market.currency,
        countries: market.countries,
        products,
        adCampaigns,
        emailCampaigns,
        customers: Math.max(50, Math.round(20_000 * this.zipf.probability(rank))),
      });
    }
  }

  /** The instant (ms since the epoch) an event of this model was made for: its label's time, not read back from its text. */
  instantOf(e: RetailEvent): number {
    const ms = this.instants.get(e);
    if (ms === undefined) throw new Error('not an event of this model');
    return ms;
  }

  get tenantIds(): number[] {
    return this.stores.map((s) => s.tenantId);
  }

  /** The next event of the simulated platform. */
  next(): RetailEvent {
    const queued = this.pending.shift();
    if (queued) return queued;
    const r = this.rng.next();
    if (r < 0.3) return this.adImpression();
    if (r < 0.36) return this.emailSend();
    return this.sessionStep();
  }

  private store(): Storefront {
    return this.stores[this.zipf.sample(this.rng.next()) - 1] as Storefront;
  }

  private event(store: Storefront, type: string, country: string, fields: Omit<RetailEvent, 'tenantId' | 'type' | 'occurredAt' | 'eventId'>): RetailEvent {
    // Client clocks lag the server a little; the instant stays well inside any retention window.
    const ms = this.clock() - this.rng.int(1500);
    const offset = this.rng.chance(0.3) ? (OFFSETS[country] ?? 0) : 0;
    const e: RetailEvent = {
      ...(this.rng.chance(this.idlessShare) ? {} : { eventId: uuidV7(ms, this.rng) }),
      tenantId: store.tenantId,
      type,
      occurredAt: isoWithOffset(ms, offset),
    };
    this.instants.set(e, Math.trunc(ms));
    return Object.assign(e, fields);
  }

  private newSession(store: Storefront, via?: { referrer: string; campaignId?: string }): Session {
    const loggedIn = this.rng.chance(0.4);
    const s: Session = {
      store,
      sessionId: uuidV7(this.clock(), this.rng),
      deviceId: `dev-${this.rng.bytes(6).toString('hex')}`,
      country: this.rng.pick(store.countries),
      browser: this.rng.pick(BROWSERS),
      lastUrl: `https://${store.domain}/`,
      viewed: [],
      cart: [],
      ...(loggedIn ? { userId: `user-${store.tenantId}-${this.rng.int(store.customers)}` } : {}),
    };
    if (via) {
      s.referrer = via.referrer;
      if (via.campaignId) s.campaignId = via.campaignId;
    } else if (this.rng.chance(0.5)) {
      s.referrer = this.rng.pick(SEARCH_REFERRERS);
    }
    return s;
  }

  private common(s: Session): Omit<RetailEvent, 'tenantId' | 'type' | 'occurredAt' | 'eventId'> {
    return {
      sessionId: s.sessionId,
      ...(s.userId ? { userId: s.userId } : {}),
      deviceId: s.deviceId,
      country: s.country,
      browser: s.browser,
      ...(s.campaignId ? { campaignId: s.campaignId } : {}),
    };
  }

  private adImpression(): RetailEvent {
    const store = this.store();
    const campaignId = this.rng.pick(store.adCampaigns);
    const country = this.rng.pick(store.countries);
    const placement = this.rng.pick(['search', 'social', 'display', 'video'] as const);
    const props = { placement, creative: `cr-${this.rng.int(12)}`, costMicros: 500 + this.rng.int(4000) };
    const e = this.event(store, 'ad_impression', country, { campaignId, country, deviceId: `dev-${this.rng.bytes(6).toString('hex')}`, properties: props });
    // Click-through rates of a few percent; a click starts a shopping session attributed to the campaign.
    if (this.rng.chance(0.03)) {
      const s = this.newSession(store, { referrer: `https://ads.example.net/${placement}`, campaignId });
      s.deviceId = e.deviceId ?? s.deviceId;
      s.country = country;
      this.pending.push(this.event(store, 'ad_click', country, { ...this.common(s), url: s.lastUrl, properties: { placement, creative: props.creative } }));
      this.sessions.push(s);
    }
    return e;
  }

  /** A campaign e-mail sent; about a quarter are opened, and some opens are clicked (open and click rates). */
  private emailSend(): RetailEvent {
    const store = this.store();
    const campaignId = this.rng.pick(store.emailCampaigns);
    const country = this.rng.pick(store.countries);
    const userId = `user-${store.tenantId}-${this.rng.int(store.customers)}`;
    const sent = this.event(store, 'email_send', country, { userId, campaignId, country });
    if (this.rng.chance(0.25)) {
      this.pending.push(this.event(store, 'email_open', country, { userId, campaignId, country, properties: { client: this.rng.pick(['gmail', 'outlook', 'apple-mail', 'other']) } }));
      if (this.rng.chance(0.15)) {
        const s = this.newSession(store, { referrer: 'https://mail.example.net/', campaignId });
        s.userId = userId;
        s.country = country;
        this.pending.push(this.event(store, 'email_click', country, { ...this.common(s), url: s.lastUrl }));
        this.sessions.push(s);
      }
    }
    return sent;
  }

  private sessionStep(): RetailEvent {
    let s: Session;
    let index: number;
    if (this.sessions.length < this.concurrentSessions || this.rng.chance(0.05)) {
      s = this.newSession(this.store());
      this.sessions.push(s);
      index = this.sessions.length - 1;
      // The landing page view.
      return this.event(s.store, 'page_view', s.country, { ...this.common(s), url: s.lastUrl, ...(s.referrer ? { referrer: s.referrer } : {}) });
    }
    index = this.rng.int(this.sessions.length);
    s = this.sessions[index] as Session;
    const store = s.store;
    const r = this.rng.next();
    let e: RetailEvent;
    if (s.cart.length > 0 && r < 0.12) {
      const revenue = round2(s.cart.reduce((sum, i) => sum + i.product.price * i.quantity, 0));
      const items = s.cart.map((i) => ({ sku: i.product.sku, quantity: i.quantity, price: i.product.price }));
      e = this.event(store, 'purchase', s.country, {
        ...this.common(s),
        url: `https://${store.domain}/checkout/complete`,
        referrer: s.lastUrl,
        revenue,
        properties: { orderId: `ord-${this.rng.bytes(5).toString('hex')}`, currency: store.currency, items },
      });
      this.sessions.splice(index, 1);
      return e;
    }
    if (s.viewed.length > 0 && r < 0.3) {
      const product = this.rng.pick(s.viewed);
      const quantity = 1 + (this.rng.chance(0.2) ? this.rng.int(3) : 0);
      s.cart.push({ product, quantity });
      e = this.event(store, 'add_to_cart', s.country, {
        ...this.common(s),
        url: s.lastUrl,
        properties: { sku: product.sku, quantity, price: product.price, currency: store.currency },
      });
    } else if (r < 0.5) {
      e = this.event(store, 'click', s.country, { ...this.common(s), url: s.lastUrl, properties: { target: this.rng.pick(CLICK_TARGETS) } });
    } else {
      const product = this.rng.pick(store.products);
      s.viewed.push(product);
      const url = this.rng.chance(0.2) ? `https://${store.domain}/c/${product.category}` : `https://${store.domain}/p/${product.sku}`;
      e = this.event(store, 'page_view', s.country, {
        ...this.common(s),
        url,
        referrer: s.lastUrl,
        properties: { category: product.category, sku: product.sku, price: product.price },
      });
      s.lastUrl = url;
    }
    // Most sessions end without buying.
    if (this.rng.chance(0.08)) this.sessions.splice(index, 1);
    return e;
  }
}
