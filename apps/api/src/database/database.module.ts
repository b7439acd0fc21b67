import { DynamicModule, Global, Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import type { DatabaseHandle } from './database';

export const DB = Symbol('DB');
export const DB_HANDLE = Symbol('DB_HANDLE');

/** Provides an already-opened, migrated database. Opening happens in main.ts / test setup. */
@Global()
@Module({})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DB_HANDLE) private readonly handle: DatabaseHandle & { ownedByApp?: boolean }) {}

  static forRoot(handle: DatabaseHandle, options: { closeOnShutdown: boolean }): DynamicModule {
    return {
      module: DatabaseModule,
      providers: [
        { provide: DB_HANDLE, useValue: Object.assign(handle, { ownedByApp: options.closeOnShutdown }) },
        { provide: DB, useValue: handle.db },
      ],
      exports: [DB, DB_HANDLE],
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.handle.ownedByApp) await this.handle.close();
  }
}
