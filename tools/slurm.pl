#!/usr/bin/env perl
# slurm.pl: run.pl's interface, but the jobs run on a Slurm cluster.
#
#   slurm.pl [options] [JOB=1:N] LOGFILE COMMAND [ARGS...]
#
# Writes a batch script to <logdir>/q/<name>.sh and submits it with "sbatch --wait" (a job array
# for JOB=a:b), so it returns when every task is done. Each task runs the command through run.pl
# on its node, so logs look exactly like local ones, then writes its exit code to
# <logdir>/q/<name>.<index>.exit; a task that leaves no exit file (killed, out of time) counts as
# failed. Slurm's own output goes to <logdir>/q/<name>[.<index>].out.
#
# Settings come from --config FILE (default: conf/slurm.conf if it exists; see tools/conf/slurm.conf)
# and are overridden by the command line.
use strict;
use warnings;
use Cwd qw(getcwd);
use File::Basename qw(basename dirname);
use File::Path qw(make_path);
use FindBin;

sub fail;                          # defined below: print the message and exit 1
my $usage = <<'EOF';
Usage: slurm.pl [options] [JOB=1:N] LOGFILE COMMAND [ARGS...]
Options (each also a key of the config file, with "_" for "-"):
  --config FILE        key=value defaults (default: conf/slurm.conf if present)
  --gpu N              --gres=gpu:N (and gpu_partition, if set)
  --mem X              --mem=X
  --num-threads N      --cpus-per-task=N
  --time T             --time=T
  --max-jobs-run M     at most M array tasks at a time (--array=a-b%M)
  --partition P        --partition=P
  --gpu-partition P    partition used when N > 0 GPUs are requested
  --extra-options S    further sbatch options, split on spaces
  --num-nodes N        --nodes=N (ESPnet's launcher then starts one srun task per node)
  --name S             --job-name=S (default: the log file's name)
EOF

my @keys = qw(partition gpu_partition gpu mem num_threads num_nodes time max_jobs_run extra_options
              name);
my %opt = map { $_ => '' } @keys;
$opt{gpu} = 0;
my (%cli, $config);
my ($var, $first, $last) = (undef, 1, 1);

while (@ARGV) {                    # options and the JOB=a:b range, in any order
  my $arg = $ARGV[0];
  if ($arg =~ /^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$/) {
    fail "slurm.pl: only one job range allowed\n" if defined $var;
    ($var, $first, $last) = ($1, $2, $3 // $2);
    fail "slurm.pl: empty job range $arg\n" if $last < $first;
    shift @ARGV;
    next;
  }
  last unless $arg =~ /^--./;
  shift @ARGV;
  my ($key, $val) = $arg =~ /^--([^=]+)=(.*)$/s ? ($1, $2) : (substr($arg, 2), shift @ARGV);
  $key =~ tr/-/_/;
  fail "slurm.pl: option --$key needs a value\n" unless defined $val;
  if ($key eq 'config') { $config = $val; next; }
  fail "slurm.pl: unknown option $arg\n$usage" unless exists $opt{$key};
  $cli{$key} = $val;
}
fail $usage if @ARGV < 2;
my ($log_spec, @cmd) = @ARGV;
my $num_jobs = $last - $first + 1;
if ($num_jobs > 1 && index($log_spec, $var) < 0) {
  fail "slurm.pl: $num_jobs jobs would share one log file; put $var in the name: $log_spec\n";
}

$config //= 'conf/slurm.conf' if -f 'conf/slurm.conf';
read_config($config) if defined $config;
%opt = (%opt, %cli);
fail "slurm.pl: --gpu expects a number, got '$opt{gpu}'\n" unless $opt{gpu} =~ /^\d+$/;
for my $key (qw(num_threads num_nodes max_jobs_run)) {
  fail "slurm.pl: --$key expects a positive integer, got '$opt{$key}'\n"
    unless $opt{$key} =~ /^([1-9]\d*)?$/;
}

# Names: exp/log/train.JOB.log -> exp/log/q/train.{sh,sbatch.log,<i>.out,<i>.exit}
my $qdir = dirname($log_spec) . '/q';
my $name = basename($log_spec);
$name =~ s/\.?\Q$var\E//g if defined $var;
$name =~ s/\.log$//;
$name = 'job' if $name eq '';
make_path($qdir) unless -d $qdir;
my $script = "$qdir/$name.sh";
my $base = "$qdir/$name";

my $partition = $opt{gpu} > 0 && $opt{gpu_partition} ne '' ? $opt{gpu_partition} : $opt{partition};
my @sbatch = ('sbatch', '--wait', '--job-name=' . ($opt{name} ne '' ? $opt{name} : $name));
push @sbatch, defined $var ? ("--output=$base.%a.out", "--array=$first-$last"
                              . ($opt{max_jobs_run} ne '' ? "%$opt{max_jobs_run}" : ''))
                           : "--output=$base.out";
push @sbatch, "--partition=$partition" if $partition ne '';
push @sbatch, "--gres=gpu:$opt{gpu}" if $opt{gpu} > 0;
push @sbatch, "--mem=$opt{mem}" if $opt{mem} ne '';
push @sbatch, "--cpus-per-task=$opt{num_threads}" if $opt{num_threads} ne '';
push @sbatch, "--nodes=$opt{num_nodes}" if $opt{num_nodes} ne '';
push @sbatch, "--time=$opt{time}" if $opt{time} ne '';
push @sbatch, split(' ', $opt{extra_options});
push @sbatch, $script;

my $range = defined $var ? "$var=\$task:\$task " : '';
open(my $fh, '>', $script) or fail "slurm.pl: cannot write $script: $!\n";
print $fh "#!/usr/bin/env bash\n",
  "# Written by slurm.pl at " . localtime() . "; submitted with:\n",
  "# " . join(' ', map { sq($_) } @sbatch) . "\n",
  "cd " . sq(getcwd()) . " || exit 1\n",
  "if [ -f ./path.sh ]; then . ./path.sh; fi\n",
  "task=\${SLURM_ARRAY_TASK_ID:-$first}\n",
  sq("$FindBin::RealBin/run.pl") . " $range" . join(' ', map { sq($_) } $log_spec, @cmd) . "\n",
  "rc=\$?\n",
  "echo \$rc > " . sq("$base.") . "\"\$task\".exit\n",
  "exit \$rc\n";
close($fh);
chmod(0755, $script);

unlink("$base.$_.exit") for $first .. $last;
my $sbatch_log = "$base.sbatch.log";
my $pid = fork() // fail "slurm.pl: fork failed: $!\n";
if ($pid == 0) {                   # sbatch's own messages go to a file, not the caller's log
  open(STDOUT, '>', $sbatch_log) or die "slurm.pl: cannot write $sbatch_log: $!\n";
  open(STDERR, '>&', \*STDOUT) or die "slurm.pl: cannot redirect stderr: $!\n";
  { no warnings "exec"; exec(@sbatch) }
  die "slurm.pl: cannot run $sbatch[0]: $!\n";
}
waitpid($pid, 0);
my $sbatch_rc = $? >> 8;

my (@failed, @lost);
for my $i ($first .. $last) {
  if (open(my $in, '<', "$base.$i.exit")) {
    my $rc = <$in> // '';
    push @failed, $i unless $rc =~ /^0\s*$/;
  } else {
    push @failed, $i;
    push @lost, $i;
  }
}
if (@lost == $num_jobs && $sbatch_rc != 0) {
  fail "slurm.pl: sbatch failed (exit $sbatch_rc), see $sbatch_log:\n" . slurp($sbatch_log);
}
if (@failed) {
  printf STDERR "slurm.pl: %d / %d failed, log is in %s\n", scalar(@failed), $num_jobs,
    subst($log_spec, $failed[0]);
  printf STDERR "slurm.pl: %d task(s) left no exit status (killed, out of time or memory?),"
    . " e.g. task %d: see %s\n", scalar(@lost), $lost[0],
    defined $var ? "$base.$lost[0].out" : "$base.out" if @lost;
  exit 1;
}
exit 0;

sub fail {
  print STDERR @_;
  exit 1;
}

sub sq {                           # quote one word for bash
  my ($s) = @_;
  return $s if $s =~ m{^[\w\@%+=:,./-]+$};
  $s =~ s/'/'\\''/g;
  return "'$s'";
}

sub subst {
  my ($s, $i) = @_;
  $s =~ s/\Q$var\E/$i/g if defined $var;
  return $s;
}

sub slurp {
  open(my $in, '<', $_[0]) or return '';
  local $/;
  return <$in>;
}

sub read_config {                  # key=value lines, "# comments", optional quotes around values
  my ($file) = @_;
  open(my $in, '<', $file) or fail "slurm.pl: cannot read config $file: $!\n";
  while (my $line = <$in>) {
    $line =~ s/(^|\s)#.*//s;
    next if $line =~ /^\s*$/;
    $line =~ /^\s*([\w-]+)\s*=\s*(.*?)\s*$/
      or fail "slurm.pl: $file:$.: expected key=value, got: $line\n";
    my ($key, $val) = ($1, $2);
    $key =~ tr/-/_/;
    $val = $1 if $val =~ /^"(.*)"$/ || $val =~ /^'(.*)'$/;
    fail "slurm.pl: $file:$.: unknown key '$key' (known: @keys)\n" unless exists $opt{$key};
    $opt{$key} = $val;
  }
}
