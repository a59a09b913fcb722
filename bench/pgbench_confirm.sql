-- The SQL of one POS confirm (src/kopilka/services/purchases.py: do_confirm -> _settle ->
-- Posting.flush) for a member receipt that redeems points held at calculate: the
-- heaviest confirm, statement for statement, as pgbench sees it.  bench/pos_load.py
-- prepares a pool of calculated receipts with active holds in the bench database and
-- runs:  pgbench -n -c 16 -j 2 -T 10 -D term=<terminal id> -D pool=<size> -D n=0 -f this
-- Values are representative (a 20-line basket, 1 point burned from one lot, points earned
-- into a new lot), not a consistent calculation: the database work is what is measured.
-- Deviations: "UPDATE holds" has no "AND state = 'active'" (a pool receipt is confirmed
-- many times and must write every time); receipt_lines get a fresh idx per run; the lots
-- join also matches lots.program_id, so that it uses the (program_id, account_id, id)
-- index (the app's join on account_id alone scans every lot: see bench/README.md).
\set g random(1, :pool)
\set n :n + 1
\set idx0 :client_id * 10000000 + :n * 32
BEGIN;
-- _locked_receipt
SELECT id, state, account_id, occurred_at, calc_response, confirm_response, earned_lot_id, partner_id
  FROM receipts WHERE terminal_id = :term AND pos_receipt_id = 'pgbench-' || :g FOR UPDATE \gset r_
-- load_account(lock=True): the account with its non-empty lots (the last row's lot is burned)
SELECT accounts.id, accounts.program_id, accounts.balance, accounts.held, accounts.debt,
       lots.id AS lot_id, lots.remaining, lots.activates_at, lots.expires_at
  FROM accounts LEFT OUTER JOIN lots ON lots.program_id = accounts.program_id
       AND lots.account_id = accounts.id AND lots.remaining > 0
 WHERE accounts.id = :r_account_id FOR UPDATE OF accounts \aset acc_
-- _take_hold
UPDATE holds SET state = 'confirmed', resolved_at = now() WHERE holds.receipt_pk = :r_id RETURNING holds.id \gset h_
-- Posting.flush: the new (earned) lot
INSERT INTO lots (program_id, account_id, amount, remaining, activates_at, expires_at, receipt_pk, funding_partner_id, created_at)
  VALUES (:acc_program_id, :r_account_id, 15900, 15900, now(), now() + interval '365 days', :r_id, :r_partner_id, now())
  RETURNING lots.id \gset new_
-- Posting.flush: burned points leave the lot
UPDATE lots SET remaining = (lots.remaining + -100) WHERE lots.id = :acc_lot_id;
-- Posting.flush: ledger entries (burn from the hold, earn into the new lot)
INSERT INTO ledger_entries (program_id, account_id, kind, amount, held_delta, lot_id, hold_id, receipt_pk, refund_pk, funding_partner_id, created_at)
  VALUES (:acc_program_id, :r_account_id, 'burn', -100, -100, :acc_lot_id, :h_id, :r_id, NULL, :r_partner_id, now()),
         (:acc_program_id, :r_account_id, 'earn', 15900, 0, :new_id, NULL, :r_id, NULL, :r_partner_id, now());
-- Posting.flush: the account's cached totals
UPDATE accounts SET balance = accounts.balance + 15800, held = accounts.held, debt = accounts.debt, updated_at = now()
 WHERE accounts.id = :r_account_id;
-- _settle: the receipt's lines (one multi-row INSERT)
INSERT INTO receipt_lines (receipt_pk, idx, program_id, sku, name, category, quantity, price, amount, discount, points_redeemed, redeemed_value, to_pay, points_earned) VALUES
  (:r_id, :idx0 + 0, :acc_program_id, '4697595099918', 'Молоко 3,2% 1 л', 'dairy', 2000, 12876, 25752, 0, 5, 5, 25747, 1200),
  (:r_id, :idx0 + 1, :acc_program_id, '4686541790244', 'Хлеб бородинский', 'bakery', 1000, 7737, 7737, 0, 5, 5, 7732, 300),
  (:r_id, :idx0 + 2, :acc_program_id, '4616798022749', 'Яблоки Гала, кг', 'fruit_veg', 535, 26955, 14421, 0, 5, 5, 14416, 700),
  (:r_id, :idx0 + 3, :acc_program_id, '4618750977240', 'Куриное филе, кг', 'meat', 2228, 17060, 38010, 0, 5, 5, 38005, 1900),
  (:r_id, :idx0 + 4, :acc_program_id, '4640364797839', 'Кофе в зёрнах 1 кг', 'coffee', 2000, 30395, 60790, 0, 5, 5, 60785, 3000),
  (:r_id, :idx0 + 5, :acc_program_id, '4616118263334', 'Гречка 900 г', 'grocery', 1000, 39103, 39103, 0, 5, 5, 39098, 1900),
  (:r_id, :idx0 + 6, :acc_program_id, '4644134036573', 'Вода минеральная 1,5 л', 'drinks', 3000, 11103, 33309, 0, 5, 5, 33304, 1600),
  (:r_id, :idx0 + 7, :acc_program_id, '4687575106801', 'Средство для посуды', 'household', 3000, 44109, 132327, 0, 5, 5, 132322, 6600),
  (:r_id, :idx0 + 8, :acc_program_id, '4644257754828', 'Сыр Российский, кг', 'cheese', 1774, 6239, 11068, 0, 5, 5, 11063, 500),
  (:r_id, :idx0 + 9, :acc_program_id, '4630866963147', 'Шоколад тёмный 90 г', 'sweets', 1000, 39471, 39471, 0, 5, 5, 39466, 1900),
  (:r_id, :idx0 + 10, :acc_program_id, '4683634014884', 'Молоко 3,2% 1 л', 'dairy', 2000, 30458, 60916, 0, 5, 5, 60911, 3000),
  (:r_id, :idx0 + 11, :acc_program_id, '4684339363384', 'Хлеб бородинский', 'bakery', 1000, 40405, 40405, 0, 5, 5, 40400, 2000),
  (:r_id, :idx0 + 12, :acc_program_id, '4689807365009', 'Яблоки Гала, кг', 'fruit_veg', 890, 9743, 8671, 0, 5, 5, 8666, 400),
  (:r_id, :idx0 + 13, :acc_program_id, '4683432905170', 'Куриное филе, кг', 'meat', 919, 27395, 25176, 0, 5, 5, 25171, 1200),
  (:r_id, :idx0 + 14, :acc_program_id, '4616718910659', 'Кофе в зёрнах 1 кг', 'coffee', 3000, 7104, 21312, 0, 5, 5, 21307, 1000),
  (:r_id, :idx0 + 15, :acc_program_id, '4668118295906', 'Гречка 900 г', 'grocery', 3000, 16487, 49461, 0, 5, 5, 49456, 2400),
  (:r_id, :idx0 + 16, :acc_program_id, '4659191052336', 'Вода минеральная 1,5 л', 'drinks', 2000, 33503, 67006, 0, 5, 5, 67001, 3300),
  (:r_id, :idx0 + 17, :acc_program_id, '4634886670375', 'Средство для посуды', 'household', 2000, 19270, 38540, 0, 5, 5, 38535, 1900),
  (:r_id, :idx0 + 18, :acc_program_id, '4651121836719', 'Сыр Российский, кг', 'cheese', 1149, 8354, 9599, 0, 5, 5, 9594, 400),
  (:r_id, :idx0 + 19, :acc_program_id, '4656708359879', 'Шоколад тёмный 90 г', 'sweets', 3000, 35437, 106311, 0, 5, 5, 106306, 5300);
-- _settle: the earned lot on the receipt
UPDATE receipts SET earned_lot_id = :new_id WHERE receipts.id = :r_id;
-- _settle: the outbox event
INSERT INTO outbox (program_id, topic, payload, created_at)
  VALUES (:acc_program_id, 'purchase.confirmed', '{"receipt_pk":' || :r_id || ',"customer_id":1,"points_earned":"159.00","points_redeemed":"1.00","balance":{"available":"4321.00","pending":"0.00","held":"0.00"}}', now());
-- do_confirm: the receipt is confirmed, its answer stored
UPDATE receipts SET state = 'confirmed', confirmed_at = now(), confirm_response = calc_response WHERE receipts.id = :r_id;
COMMIT;
