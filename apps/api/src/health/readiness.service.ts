import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/config.module';
import type { DatabaseHandle } from '../database/database';
import { DB_HANDLE } from '../database/database.module';

const CHECK_TIMEOUT_MS = 2000;

export interface Readiness {
  ready: boolean;
  database: 'up' | 'down';
  /** this build's migrations the database has not applied; null when the database did not answer */
  pendingMigrations: number | null;
  draining: boolean;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Readiness for a load balancer: the database answers within 2 s, it has every migration this
 * build needs (an instance of a newer build started before its migration ran is not ready), and
 * the instance is not draining (SIGTERM received: ready goes 503 SHUTDOWN_DRAIN_MS before the
 * server stops accepting). Migrations once seen applied stay applied (they are never rolled back).
 */
@Injectable()
export class ReadinessService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(ReadinessService.name);
  private draining = false;
  private migrationsApplied = false;

  constructor(
    @Inject(DB_HANDLE) private readonly db: DatabaseHandle,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async check(): Promise<Readiness> {
    let database: Readiness['database'] = 'up';
    let pendingMigrations: number | null = 0;
    try {
      if (this.migrationsApplied) await withTimeout(this.db.ping(), CHECK_TIMEOUT_MS);
      else {
        pendingMigrations = await withTimeout(this.db.pendingMigrations(), CHECK_TIMEOUT_MS);
        this.migrationsApplied = pendingMigrations === 0;
      }
    } catch {
      database = 'down';
      pendingMigrations = null;
    }
    const ready = database === 'up' && pendingMigrations === 0 && !this.draining;
    return { ready, database, pendingMigrations, draining: this.draining };
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.draining = true;
    const ms = this.config.shutdownDrainMs;
    if (ms > 0) {
      this.logger.log(`draining: /health/ready answers 503 for ${ms} ms before the server stops`);
      await new Promise((r) => setTimeout(r, ms));
    }
  }
}
