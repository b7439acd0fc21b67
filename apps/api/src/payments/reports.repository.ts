import { Inject, Injectable } from '@nestjs/common';
import { sql } from 'drizzle-orm';
import { DB } from '../database/database.module';
import { resultRows, type Db } from '../database/database';

export interface DailyRow {
  day: string;
  provider: string;
  currency: string;
  completedCount: number;
  completedMinor: bigint;
  failed: number;
  cancelled: number;
  expired: number;
  refundCount: number;
  refundMinor: bigint;
  medianSeconds: number | null;
}

/**
 * Read-only reporting over payments and refunds (the end-of-day summary). One SQL query per
 * report; the tables stay owned by PaymentsRepository / RefundsRepository for writes.
 */
@Injectable()
export class ReportsRepository {
  constructor(@Inject(DB) private readonly db: Db) {}

  /**
   * Per Nairobi calendar day (from..to inclusive) and provider/currency: completed payments by
   * their completed_at, failed/cancelled/expired by their created_at, succeeded refunds by their
   * completed_at, and the median seconds from created to completed.
   */
  async daily(shopId: string, from: string, to: string): Promise<DailyRow[]> {
    const res = await this.db.execute(sql`
      with bounds as (
        select (${from}::date::timestamp at time zone 'Africa/Nairobi') as t0,
               ((${to}::date + 1)::timestamp at time zone 'Africa/Nairobi') as t1
      ),
      p as (
        select (case when status = 'completed' then completed_at else created_at end at time zone 'Africa/Nairobi')::date as day,
               provider, currency, status, amount_minor,
               case when status = 'completed' then extract(epoch from completed_at - created_at) end as secs
        from payments, bounds
        where shop_id = ${shopId}
          and status in ('completed', 'failed', 'cancelled', 'expired')
          and (case when status = 'completed' then completed_at else created_at end) >= bounds.t0
          and (case when status = 'completed' then completed_at else created_at end) < bounds.t1
      ),
      pa as (
        select day, provider, currency,
               count(*) filter (where status = 'completed') as completed_count,
               coalesce(sum(amount_minor) filter (where status = 'completed'), 0) as completed_minor,
               count(*) filter (where status = 'failed') as failed,
               count(*) filter (where status = 'cancelled') as cancelled,
               count(*) filter (where status = 'expired') as expired,
               percentile_cont(0.5) within group (order by secs) as median_seconds
        from p group by day, provider, currency
      ),
      r as (
        select (coalesce(completed_at, updated_at) at time zone 'Africa/Nairobi')::date as day, provider, currency,
               count(*) as refund_count, sum(amount_minor) as refund_minor
        from refunds, bounds
        where shop_id = ${shopId} and status = 'succeeded'
          and coalesce(completed_at, updated_at) >= bounds.t0 and coalesce(completed_at, updated_at) < bounds.t1
        group by 1, 2, 3
      )
      select to_char(day, 'YYYY-MM-DD') as day, provider, currency,
             coalesce(completed_count, 0)::int as completed_count, coalesce(completed_minor, 0)::text as completed_minor,
             coalesce(failed, 0)::int as failed, coalesce(cancelled, 0)::int as cancelled, coalesce(expired, 0)::int as expired,
             coalesce(refund_count, 0)::int as refund_count, coalesce(refund_minor, 0)::text as refund_minor,
             median_seconds::float8 as median_seconds
      from pa full join r using (day, provider, currency)
      order by day, provider, currency`);
    return resultRows(res).map((r) => ({
      day: String(r.day),
      provider: String(r.provider),
      currency: String(r.currency),
      completedCount: Number(r.completed_count),
      completedMinor: BigInt(String(r.completed_minor)),
      failed: Number(r.failed),
      cancelled: Number(r.cancelled),
      expired: Number(r.expired),
      refundCount: Number(r.refund_count),
      refundMinor: BigInt(String(r.refund_minor)),
      medianSeconds: r.median_seconds === null || r.median_seconds === undefined ? null : Number(r.median_seconds),
    }));
  }
}
