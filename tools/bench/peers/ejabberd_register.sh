#!/bin/sh
# usage: ejabberd_register.sh N PREFIX
# Registers PREFIX1..PREFIXN@localhost (password pw<i>) on the running node
# ejabberd_bench@localhost (see ejabberdctl.cfg) in one Erlang RPC call.
case "$1" in -h|--help) sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
N=${1:-1000}; PFX=${2:-u}
exec erl -sname "reg$$@localhost" -hidden -noinput -eval "
N = $N, P = <<\"$PFX\">>, T0 = erlang:monotonic_time(millisecond),
R = rpc:call(ejabberd_bench@localhost, lists, foreach,
  [fun(I) -> S = integer_to_binary(I), ok = ejabberd_auth:try_register(<<P/binary, S/binary>>, <<\"localhost\">>, <<\"pw\", S/binary>>) end, lists:seq(1, N)]),
io:format(\"rpc ~p, ~p users in ~p ms~n\", [R, N, erlang:monotonic_time(millisecond) - T0]), halt(case R of ok -> 0; _ -> 1 end)."
