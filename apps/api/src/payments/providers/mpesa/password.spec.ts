import { stkPassword } from './password';

describe('stkPassword', () => {
  it("matches Daraja's own worked example", () => {
    expect(
      stkPassword('174379', 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919', '20160216165627'),
    ).toBe(
      'MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQyYzkxOTIwMTYwMjE2MTY1NjI3',
    );
  });

  it('is plain concatenation under standard base64', () => {
    const p = stkPassword('600000', 'key', '20250101000000');
    expect(Buffer.from(p, 'base64').toString('utf8')).toBe('600000key20250101000000');
    expect(p).toBe('NjAwMDAwa2V5MjAyNTAxMDEwMDAwMDA=');
  });

  it('changes with the timestamp', () => {
    expect(stkPassword('174379', 'k', '20250101000000')).not.toBe(stkPassword('174379', 'k', '20250101000001'));
  });
});
