import type { Tx } from '../database/database';
import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { ConflictError, NotFoundError } from '../common/errors';
import { toMajor, toMinor } from '../common/money';
import { OrderResponseDto, type OrderStatus } from './orders.dto';
import type { OrderBalance, OrdersPort } from './orders.port';
import { OrderRow, OrdersRepository } from './orders.repository';

export const ORDER_PAID_EVENT = 'order.paid';

@Injectable()
export class OrdersService implements OrdersPort {
  /** See OrdersPort: payments check these orders in the statement that writes the payment. */
  readonly ordersTableIsLocal = true;

  constructor(
    private readonly repo: OrdersRepository,
    private readonly events: EventEmitter2,
  ) {}

  /** Creating the same order twice with the same total is harmless (POS retries); a different total is a 409. */
  async create(
    shopId: string,
    input: { id: string; total: number; currency?: string },
  ): Promise<{ created: boolean; order: OrderResponseDto }> {
    const currency = input.currency ?? 'KES';
    const totalMinor = toMinor(input.total, currency);
    const created = await this.repo.insert(shopId, input.id, totalMinor, currency);
    const row = await this.repo.find(shopId, input.id);
    if (!row) throw new NotFoundError('Order');
    if (!created && (row.totalMinor !== totalMinor || row.currency !== currency)) {
      throw new ConflictError('ORDER_EXISTS', `Order ${input.id} already exists with a different total or currency`, {
        order: this.map(row),
      });
    }
    return { created, order: this.map(row) };
  }

  async get(shopId: string, id: string): Promise<OrderResponseDto> {
    const row = await this.repo.find(shopId, id);
    if (!row) throw new NotFoundError('Order', { orderId: id });
    return this.map(row);
  }

  async getBalance(shopId: string, orderId: string, tx?: Tx): Promise<OrderBalance | null> {
    if (tx) await this.repo.lock(shopId, orderId, tx);
    const row = await this.repo.find(shopId, orderId, tx);
    return row ? balanceOf(orderId, row) : null;
  }

  async getBalancesLocked(
    keys: { shopId: string; orderId: string }[],
    tx: Tx,
  ): Promise<(OrderBalance & { shopId: string })[]> {
    await this.repo.lockMany(keys, tx);
    // A statement after the locks: its snapshot has every completion committed before they were granted.
    const rows = await this.repo.balances(keys, tx);
    return rows.map((row) => ({ ...balanceOf(row.id, row), shopId: row.shopId }));
  }

  settleManyIfPaid(
    keys: { shopId: string; orderId: string }[],
    tx: Tx,
  ): Promise<{ shopId: string; orderId: string }[]> {
    return this.repo.markManyPaidIfCovered(keys, tx);
  }

  settleIfPaid(shopId: string, orderId: string, tx: Tx, orderLocked = false): Promise<boolean> {
    return this.repo.markPaidIfCovered(shopId, orderId, tx, orderLocked);
  }

  notifyPaid(shopId: string, orderId: string): void {
    this.events.emit(ORDER_PAID_EVENT, { shopId, orderId });
  }

  private map(row: OrderRow): OrderResponseDto {
    const outstanding = row.totalMinor - row.paidMinor;
    const kept = row.paidMinor - row.refundedMinor;
    const status: OrderStatus =
      row.refundedMinor > 0n
        ? kept <= 0n
          ? 'refunded'
          : 'partially_refunded'
        : row.paidMinor <= 0n
          ? 'unpaid'
          : outstanding > 0n
            ? 'partially_paid'
            : 'paid';
    return {
      id: row.id,
      total: toMajor(row.totalMinor, row.currency),
      currency: row.currency,
      paid: toMajor(kept, row.currency),
      refunded: toMajor(row.refundedMinor, row.currency),
      outstanding: toMajor(outstanding > 0n ? outstanding : 0n, row.currency),
      status,
      paidAt: row.paidAt ? row.paidAt.toISOString() : null,
      createdAt: row.createdAt.toISOString(),
    };
  }
}

function balanceOf(orderId: string, row: { currency: string; totalMinor: bigint; paidMinor: bigint }): OrderBalance {
  const outstanding = row.totalMinor - row.paidMinor;
  return {
    orderId,
    currency: row.currency,
    totalMinor: row.totalMinor,
    paidMinor: row.paidMinor,
    outstandingMinor: outstanding > 0n ? outstanding : 0n,
  };
}
