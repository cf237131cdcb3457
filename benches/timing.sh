# Shared by benches/compare_pcap.sh and benches/compare_tls.sh (sourced, not run):
# timing tools one after another on one input file and printing the markdown table.
#
# timing_init SCRIPT FILE  checks for GNU time, makes $WORK (removed on exit) and sets
#                          $TIME, $WORK, $MB (the file's size, 10^6 bytes) and $LOAD
#                          (load averages before the first run).
# run NAME COUNT_CMD -- CMD...
#                          times CMD under /usr/bin/time -f '%e %U %S %M' RUNS times
#                          (stdout to $WORK/NAME.out), keeps the run with least CPU,
#                          then evaluates COUNT_CMD (prints what the tool found) and
#                          adds a row. A failing CMD gives a row of n/a.
# na_row NAME              a row of n/a (tool missing).
# print_rows               the rows, under the table's header.
# Columns: wall s, CPU s (user+sys), MB/s wall, MB/s per CPU-second, peak RSS MB, found.

timing_init() {
    SCRIPT=$1
    TIME=/usr/bin/time
    [ -x "$TIME" ] || { echo "$SCRIPT: needs GNU time (apt-get install time)" >&2; exit 2; }
    WORK=$(mktemp -d "/tmp/$SCRIPT.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    MB=$(awk -v s="$(stat -c %s "$2")" 'BEGIN { printf "%.1f", s / 1e6 }')
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    ROWS=()
}

na_row() {
    ROWS+=("| $1 | n/a | n/a | n/a | n/a | n/a | n/a |")
}

run() {
    local name=$1 count=$2
    shift 3
    local best="" i line
    for ((i = 0; i < RUNS; i++)); do
        if ! "$TIME" -f '%e %U %S %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"; then
            echo "$SCRIPT: $name failed: $(tail -n 3 "$WORK/$name.err" | tr '\n' ' ')" >&2
            na_row "$name"
            return
        fi
        line=$(tail -n 1 "$WORK/$name.time")
        if [ -z "$best" ] || awk -v a="$line" -v b="$best" \
            'BEGIN { split(a, x, " "); split(b, y, " "); exit !(x[2] + x[3] < y[2] + y[3]) }'; then
            best=$line
        fi
    done
    local found
    found=$(eval "$count" 2>/dev/null | tr -d '\n')
    ROWS+=("$(awk -v l="$best" -v mb="$MB" -v name="$name" -v found="${found:-?}" 'BEGIN {
        split(l, t, " "); cpu = t[2] + t[3]
        wall = t[1] > 0 ? sprintf("%.1f", mb / t[1]) : "inf"
        percpu = cpu > 0 ? sprintf("%.1f", mb / cpu) : "inf"
        printf "| %s | %.2f | %.2f | %s | %s | %.0f | %s |", name, t[1], cpu, wall, percpu, t[4] / 1024, found
    }')")
}

print_rows() {
    echo "| tool | wall s | CPU s (user+sys) | MB/s wall | MB/s per CPU-s | peak RSS MB | found |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
}
