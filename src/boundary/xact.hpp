// Transactions of background processes: each unit of work runs in its own transaction with an
// active snapshot and an SPI session; an error aborts that transaction (cleaning up what the
// error left) and is rethrown as data for the process's loop to log.
#pragma once

#include "boundary/spi.hpp"

namespace mv::pg {

// StartTransactionCommand, snapshot, SPI; work(spi); commit. On error: abort, then rethrow.
void in_transaction(const std::function<void(Spi&)>& work);

// The same for work that manages its own SPI session (e.g. an operation run by a job).
void in_transaction_plain(const std::function<void()>& work);

}  // namespace mv::pg
