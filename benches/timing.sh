# Shared by benches/compare_pcap.sh, compare_tls.sh and compare_quic.sh (sourced, not
# run): timing tools on one input file in interleaved rounds and printing the markdown
# table.
#
# timing_init SCRIPT FILE  checks for GNU time, makes $WORK (removed on exit) and sets
#                          $TIME, $WORK, $MB (the file's size, 10^6 bytes) and $LOAD
#                          (load averages before the first run).
# timing_rounds FUNC       calls FUNC (which calls `run` once per tool) $RUNS times:
#                          every tool runs once per round, so a machine that speeds up
#                          or slows down over the minutes of a comparison moves every
#                          tool alike, not only the ones that ran in its slow minutes.
# run NAME COUNT_CMD -- CMD...
#                          times CMD once under /usr/bin/time -f '%e %U %S %M' (stdout
#                          to $WORK/NAME.out) and keeps the run with least CPU over the
#                          rounds; COUNT_CMD (prints what the tool found) is evaluated
#                          when the table is printed. A failing CMD gives a row of n/a
#                          and is not run again.
# na_row NAME              a row of n/a (tool missing).
# missing NAME WHY          na_row NAME, saying WHY on stderr the first round only.
# print_rows               the rows, under the table's header, in the order first run.
# print_paired BASE        with RUNS >= 2: how many times BASE's rate per CPU-second
#                          each other tool's (cat aside) was, round by round, and the
#                          median (the two runs of one round saw the same minutes of
#                          the machine: steadier than the ratio of two best runs).
# Columns: wall s, CPU s (user+sys), MB/s wall, MB/s per CPU-second, peak RSS MB, found.

timing_init() {
    SCRIPT=$1
    TIME=/usr/bin/time
    [ -x "$TIME" ] || { echo "$SCRIPT: needs GNU time (apt-get install time)" >&2; exit 2; }
    [[ ${RUNS:-} =~ ^[1-9][0-9]*$ ]] ||
        { echo "$SCRIPT: RUNS must be a whole number from 1 (got '${RUNS:-}')" >&2; exit 2; }
    WORK=$(mktemp -d "/tmp/$SCRIPT.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    MB=$(awk -v s="$(stat -c %s "$2")" 'BEGIN { printf "%.1f", s / 1e6 }')
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    # Per tool: the best run's "wall user sys maxrss", the count command, the CPU
    # seconds of each round (space-separated; a tool that fails once is n/a from
    # then on, so the rounds of the others stay aligned), and whether it failed or
    # is missing.
    ORDER=()
    declare -gA BEST=() COUNT=() ROUND_CPU=() NA=()
}

# Adds NAME to the table's order the first time it is seen.
timing_register() {
    if [ -z "${COUNT[$1]+set}" ] && [ -z "${NA[$1]+set}" ]; then
        ORDER+=("$1")
    fi
}

timing_rounds() {
    local round
    for ((round = 1; round <= RUNS; round++)); do
        "$1"
    done
}

na_row() {
    timing_register "$1"
    NA[$1]=1
}

missing() {
    [ -n "${NA[$1]+set}" ] || echo "$SCRIPT: $2" >&2
    na_row "$1"
}

run() {
    local name=$1 count=$2
    shift 3
    timing_register "$name"
    COUNT[$name]=$count
    [ -n "${NA[$name]+set}" ] && return
    if ! "$TIME" -f '%e %U %S %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
        echo "$SCRIPT: $name failed: $(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')" >&2
        NA[$name]=1
        return
    fi
    local line
    line=$(tail -n 1 "$WORK/$name.time")
    ROUND_CPU[$name]+="$(awk -v l="$line" 'BEGIN { split(l, t, " "); printf "%.2f ", t[2] + t[3] }')"
    if [ -z "${BEST[$name]:-}" ] || awk -v a="$line" -v b="${BEST[$name]}" \
        'BEGIN { split(a, x, " "); split(b, y, " "); exit !(x[2] + x[3] < y[2] + y[3]) }'; then
        BEST[$name]=$line
    fi
}

print_rows() {
    echo "| tool | wall s | CPU s (user+sys) | MB/s wall | MB/s per CPU-s | peak RSS MB | found |"
    echo "|---|---|---|---|---|---|---|"
    local name found
    for name in "${ORDER[@]}"; do
        if [ -n "${NA[$name]+set}" ] || [ -z "${BEST[$name]:-}" ]; then
            echo "| $name | n/a | n/a | n/a | n/a | n/a | n/a |"
            continue
        fi
        found=$(eval "${COUNT[$name]}" 2>/dev/null | tr -d '\n')
        awk -v l="${BEST[$name]}" -v mb="$MB" -v name="$name" -v found="${found:-?}" 'BEGIN {
            split(l, t, " "); cpu = t[2] + t[3]
            wall = t[1] > 0 ? sprintf("%.1f", mb / t[1]) : "inf"
            percpu = cpu > 0 ? sprintf("%.1f", mb / cpu) : "inf"
            printf "| %s | %.2f | %.2f | %s | %s | %.0f | %s |\n", name, t[1], cpu, wall, percpu, t[4] / 1024, found
        }'
    done
}

print_paired() {
    local base=$1 name
    [ "$RUNS" -ge 2 ] || return 0
    [ -n "${ROUND_CPU[$base]:-}" ] && [ -z "${NA[$base]+set}" ] || return 0
    echo
    echo "$base per CPU-second against each tool in the same round (its CPU s / $base's), round by round:"
    echo "- $base's CPU s: ${ROUND_CPU[$base]% }"
    for name in "${ORDER[@]}"; do
        # cat is the ceiling of reading the file, not a tool to compare with.
        [ "$name" = "$base" ] || [ "$name" = cat ] && continue
        [ -z "${NA[$name]+set}" ] && [ -n "${ROUND_CPU[$name]:-}" ] || continue
        awk -v name="$name" -v a="${ROUND_CPU[$base]}" -v b="${ROUND_CPU[$name]}" 'BEGIN {
            n = split(a, x, " "); split(b, y, " ")
            k = 0; list = ""
            for (i = 1; i <= n; i++) {
                if (x[i] <= 0) continue
                r[++k] = y[i] / x[i]; list = list sprintf(" %.2f", r[k])
            }
            if (k == 0) exit
            sub(/ +$/, "", b)
            for (i = 2; i <= k; i++) { v = r[i]; j = i - 1; while (j >= 1 && r[j] > v) { r[j + 1] = r[j]; j-- } r[j + 1] = v }
            med = k % 2 ? r[(k + 1) / 2] : (r[k / 2] + r[k / 2 + 1]) / 2
            printf "- %s:%s (median %.2f×, least %.2f×, most %.2f×; its CPU s: %s)\n", name, list, med, r[1], r[k], b
        }'
    done
}
