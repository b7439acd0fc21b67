/** A Daraja STK success callback in the real shape (ResultCode a number, Balance without Value). */
export function successCallback(
  merchantRequestId: string,
  checkoutRequestId: string,
  amount: number,
  receipt: string,
  phone = 254712345678,
) {
  return {
    Body: {
      stkCallback: {
        MerchantRequestID: merchantRequestId,
        CheckoutRequestID: checkoutRequestId,
        ResultCode: 0,
        ResultDesc: 'The service request is processed successfully.',
        CallbackMetadata: {
          Item: [
            { Name: 'Amount', Value: amount },
            { Name: 'MpesaReceiptNumber', Value: receipt },
            { Name: 'Balance' },
            { Name: 'TransactionDate', Value: 20261126101500 },
            { Name: 'PhoneNumber', Value: phone },
          ],
        },
      },
    },
  };
}
