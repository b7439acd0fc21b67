import { Inject, Injectable } from '@nestjs/common';
import { and, asc, eq } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { DB } from '../../../database/database.module';
import type { Db } from '../../../database/database';
import { MpesaPullRegistration, mpesaPullRegistrations } from '../../../database/schema';

export interface NewPullRegistration {
  environment: string;
  shortcode: string;
  shopId: string;
  merchantAccountId: string | null;
  outcome: 'registered' | 'already_registered';
  responseRefId: string | null;
  description: string;
  registeredBy: string;
}

/** The only code that touches mpesa_pull_registrations. */
@Injectable()
export class MpesaPullRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  async find(environment: string, shortcode: string): Promise<MpesaPullRegistration | null> {
    const rows = await this.db
      .select()
      .from(mpesaPullRegistrations)
      .where(and(eq(mpesaPullRegistrations.environment, environment), eq(mpesaPullRegistrations.shortcode, shortcode)))
      .limit(1);
    return rows[0] ?? null;
  }

  async listAll(): Promise<MpesaPullRegistration[]> {
    return this.db.select().from(mpesaPullRegistrations).orderBy(asc(mpesaPullRegistrations.registeredAt));
  }

  /** Keeps the first registration of a shortcode: a concurrent second one changes nothing. Returns the row kept. */
  async insertOnce(r: NewPullRegistration): Promise<MpesaPullRegistration> {
    await this.db
      .insert(mpesaPullRegistrations)
      .values({ id: randomUUID(), ...r })
      .onConflictDoNothing({ target: [mpesaPullRegistrations.environment, mpesaPullRegistrations.shortcode] });
    const row = await this.find(r.environment, r.shortcode);
    if (!row) throw new Error('mpesa_pull_registrations: the row just written is not there');
    return row;
  }
}
