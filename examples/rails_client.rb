#!/usr/bin/ruby
# frozen_string_literal: true

# matviews from Rails (ActiveRecord): any model's connection calls the functions with a plain
# SELECT; the jsonb response is parsed with JSON.parse.
#
# Also a test: it exits non-zero and prints "not ok" lines when a check fails. It connects with
# the libpq environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE), as `make test` sets up
# through pg_virtualenv, and needs matviews installed in that database.
require 'active_record'
require 'json'

ActiveRecord::Base.establish_connection(adapter: 'postgresql', database: ENV.fetch('PGDATABASE', 'postgres'))
DB = ActiveRecord::Base.connection

# A thin wrapper an application would keep in a model or service.
module MatViews
  def self.call(function, *args)
    binds = args.map { |a| DB.quote(a) }.join(', ')
    JSON.parse(DB.select_value("SELECT matviews.#{function}(#{binds})"))
  end
end

# The materialized view as a read-only model, as the seeds' SecondUser model.
class RbUserActivity < ActiveRecord::Base
  self.table_name = 'rb_user_activity'
  def readonly?
    true
  end
end

$checks = []
def check(name, ok)
  $checks << ok
  puts "#{ok ? 'ok' : 'not ok'} #{$checks.size} - #{name}"
end

DB.execute('CREATE EXTENSION IF NOT EXISTS matviews')
DB.execute('DROP TABLE IF EXISTS rb_events CASCADE')
DB.execute('CREATE TABLE rb_events (user_id int, kind text)')
DB.execute("INSERT INTO rb_events SELECT g % 7, 'view' FROM generate_series(1, 700) g")

created = MatViews.call('create', 'rb_user_activity',
                        'SELECT user_id, count(*) AS events FROM rb_events GROUP BY user_id')
check('create answers created', created['status'] == 'created')
check('the model reads the view', RbUserActivity.count == 7)

DB.execute("INSERT INTO rb_events VALUES (100, 'view')")
refreshed = MatViews.call('refresh', 'rb_user_activity')
check('refresh answers updated', refreshed['status'] == 'updated')
check('the model sees the new row after refresh', RbUserActivity.count == 8)

missing = MatViews.call('delete', 'rb_no_such_view', false, false)
check('delete of a missing view with if_exists => false is a 42P01 response',
      missing['status'] == 'error' && missing['error']['sqlstate'] == '42P01')

DB.transaction do
  bad = MatViews.call('create', 'rb_bad', 'SELECT 1; SELECT 2')
  check('two statements are refused with 42601', bad['error']['sqlstate'] == '42601')
  check('the transaction is still usable', DB.select_value('SELECT 1') == 1)
end

check('delete answers deleted', MatViews.call('delete', 'rb_user_activity')['status'] == 'deleted')
DB.execute('DROP TABLE rb_events')

failed = $checks.count(false)
puts "#{$checks.size - failed} passed, #{failed} failed"
exit(failed.zero? ? 0 : 1)
