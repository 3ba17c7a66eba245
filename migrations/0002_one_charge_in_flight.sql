-- At most one charge of a bill in flight at the gateway: a dunning try, a pay-now
-- and a pending bank transfer can never capture the same bill twice. The charge
-- activity claims the bill by inserting its attempt as 'pending' before calling
-- the gateway; recording the outcome releases the claim.
CREATE UNIQUE INDEX charge_attempts_one_in_flight ON charge_attempts (bill_id)
    WHERE status = 'pending';
