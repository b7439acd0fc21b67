import { DrizzleQueryError } from 'drizzle-orm';
import { describeDatabaseError, isDatabaseUnavailable } from './database';

const pgError = (fields: Record<string, unknown>, message = 'server error') =>
  Object.assign(new Error(message), fields);

describe('isDatabaseUnavailable', () => {
  it('a lost or refused connection, raw or wrapped by drizzle', () => {
    expect(
      isDatabaseUnavailable(
        pgError({ code: '57P01', severity: 'FATAL' }, 'terminating connection due to administrator command'),
      ),
    ).toBe(true);
    expect(
      isDatabaseUnavailable(
        pgError({ code: '25P03', severity: 'FATAL' }, 'terminating connection due to idle-in-transaction timeout'),
      ),
    ).toBe(true);
    expect(
      isDatabaseUnavailable(
        pgError({ code: '55000', severity: 'FATAL' }, 'database "x" is not currently accepting connections'),
      ),
    ).toBe(true);
    expect(isDatabaseUnavailable(pgError({ code: '08006' }))).toBe(true);
    expect(isDatabaseUnavailable(pgError({ code: '53300' }))).toBe(true);
    expect(isDatabaseUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(
      isDatabaseUnavailable(
        new DrizzleQueryError(
          'select 1',
          [],
          new Error('Client has encountered a connection error and is not queryable'),
        ),
      ),
    ).toBe(true);
    expect(
      isDatabaseUnavailable(
        new DrizzleQueryError('select 1', [], pgError({ code: 'ECONNREFUSED' }, 'connect ECONNREFUSED 127.0.0.1:5432')),
      ),
    ).toBe(true);
  });

  it('a statement the database refused is not an outage', () => {
    expect(
      isDatabaseUnavailable(
        new DrizzleQueryError('insert', [], pgError({ code: '23505', severity: 'ERROR' }, 'duplicate key value')),
      ),
    ).toBe(false);
    expect(
      isDatabaseUnavailable(
        new DrizzleQueryError(
          'select',
          [],
          pgError({ code: '22008', severity: 'ERROR' }, 'date/time field value out of range'),
        ),
      ),
    ).toBe(false);
    // Client input in the query parameters (drizzle puts them in its message) cannot fake an outage.
    expect(
      isDatabaseUnavailable(
        new DrizzleQueryError(
          'insert',
          ['Connection terminated unexpectedly'],
          pgError({ code: '22P02', severity: 'ERROR' }, 'invalid input'),
        ),
      ),
    ).toBe(false);
    // A socket error that did not come from a database query (e.g. a provider call) is not ours to map.
    expect(isDatabaseUnavailable(pgError({ code: 'ECONNREFUSED' }, 'connect ECONNREFUSED 10.0.0.1:443'))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
    expect(isDatabaseUnavailable('Connection terminated')).toBe(false);
  });
});

describe('describeDatabaseError', () => {
  it("keeps the SQLSTATE and the server's message, never drizzle's query and parameters", () => {
    const err = new DrizzleQueryError(
      'insert into callback_inbox ...',
      ['{"Name":"PhoneNumber","Value":254712345678}'],
      pgError({ code: '57P01', severity: 'FATAL' }, 'terminating connection due to administrator command'),
    );
    expect(describeDatabaseError(err)).toEqual({
      code: '57P01',
      message: 'terminating connection due to administrator command',
    });
    expect(JSON.stringify(describeDatabaseError(err))).not.toContain('254712345678');
  });
});
