<#
.SYNOPSIS
  Build the SegStudio bundle on Windows (PyInstaller, one folder) from a clean virtual
  environment, run its self-test, and make the installer when Inno Setup is installed.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File packaging\build.ps1              # CPU build of torch
  powershell -ExecutionPolicy Bypass -File packaging\build.ps1 -Cuda -TorchIndex https://download.pytorch.org/whl/cu126

  Output: dist\SegStudio\SegStudio.exe (windowed) and segstudio-cli.exe (console: command line and
  --self-test), and dist\SegStudio-<version>-windows-x64-setup.exe when ISCC.exe is found.
  See packaging\README.md.
#>
param(
    [switch]$Cuda,                 # bundle torch's CUDA build (give -TorchIndex with a CUDA index)
    [string]$TorchIndex = "",      # where torch comes from (default: PyTorch's CPU index for the CPU build)
    [string]$TorchVersion = "2.13.0",
    [string]$Python = "py -3.11",  # the Python that creates the build environment (3.11 or newer)
    [string]$Venv = "",            # default: build\bundle-venv
    [switch]$ReuseVenv,
    [switch]$NoSmokeTest,
    [switch]$NoInstaller
)
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path (Join-Path $PSScriptRoot "..")).Path
if (-not $Venv) { $Venv = Join-Path $Root "build\bundle-venv" }
$Dist = Join-Path $Root "dist"
$Work = Join-Path $Root "build\pyinstaller"
$Flavour = if ($Cuda) { "cuda" } else { "cpu" }
$Clock = [Diagnostics.Stopwatch]::StartNew()
function Step($Text) { Write-Host ("`n==> [{0,4:N0}s] {1}" -f $Clock.Elapsed.TotalSeconds, $Text) }
function Invoke-Checked { param([string]$Exe, [string[]]$Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Exe $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}
$env:PIP_DISABLE_PIP_VERSION_CHECK = "1"

$Py = Join-Path $Venv "Scripts\python.exe"
if ($ReuseVenv -and (Test-Path $Py)) {
    Step "reusing the build environment $Venv"
} else {
    Step "creating a clean build environment in $Venv"
    if (Test-Path $Venv) { Remove-Item -Recurse -Force $Venv }
    $launcher = $Python.Split(" ")
    Invoke-Checked $launcher[0] ($launcher[1..($launcher.Length)] + @("-m", "venv", $Venv) | Where-Object { $_ })
}
Invoke-Checked $Py @("-c", "import sys; assert sys.version_info >= (3, 11), 'SegStudio needs Python 3.11 or newer'")

Step "installing torch $TorchVersion ($Flavour build)"
Invoke-Checked $Py @("-m", "pip", "install", "--upgrade", "pip")
$torchArgs = @("-m", "pip", "install", "--no-deps", "torch==$TorchVersion")
if ($Flavour -eq "cpu") {
    $index = if ($TorchIndex) { $TorchIndex } else { "https://download.pytorch.org/whl/cpu" }
    $torchArgs += @("--extra-index-url", $index)
} elseif ($TorchIndex) {
    $torchArgs += @("--index-url", $TorchIndex)
}
Invoke-Checked $Py $torchArgs
Invoke-Checked $Py @("-m", "pip", "install", "torch==$TorchVersion")
$check = "import sys, torch; c = torch.version.cuda; print('torch', torch.__version__, 'CUDA', c or 'none'); " +
         "sys.exit(1 if (sys.argv[1] == 'cpu') == bool(c) else 0)"
& $Py -c $check $Flavour
if ($LASTEXITCODE -ne 0) { throw "the torch installed does not match the $Flavour build; pass -TorchIndex" }

Step "installing SegStudio (not editable) and the build tools"
Invoke-Checked $Py @("-m", "pip", "install", $Root, "-r", (Join-Path $Root "packaging\requirements-build.txt"))

Step "PyInstaller: one-folder bundle"
$env:SEGSTUDIO_FLAVOUR = $Flavour
Invoke-Checked $Py @("-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                     "--distpath", $Dist, "--workpath", $Work, (Join-Path $Root "packaging\segstudio.spec"))
$Bundle = Join-Path $Dist "SegStudio"
$size = (Get-ChildItem -Recurse -File $Bundle | Measure-Object -Sum Length).Sum / 1MB
Step ("bundle: {0} ({1:N0} MB)" -f $Bundle, $size)

if (-not $NoSmokeTest) {
    Step "smoke test: the bundle's --self-test, offscreen"
    $before = Get-ChildItem -Recurse -File $Bundle | ForEach-Object { "$($_.FullName) $($_.Length) $($_.LastWriteTimeUtc.Ticks)" }
    $env:QT_QPA_PLATFORM = "offscreen"
    $shot = Join-Path ([IO.Path]::GetTempPath()) "segstudio-self-test.png"
    Invoke-Checked (Join-Path $Bundle "segstudio-cli.exe") @("--self-test", "--screenshot", $shot)
    Remove-Item Env:\QT_QPA_PLATFORM
    $after = Get-ChildItem -Recurse -File $Bundle | ForEach-Object { "$($_.FullName) $($_.Length) $($_.LastWriteTimeUtc.Ticks)" }
    if (Compare-Object $before $after) { throw "the self-test wrote inside the bundle" }
}

if (-not $NoInstaller) {
    $iscc = (Get-Command iscc -ErrorAction SilentlyContinue).Source
    if (-not $iscc) { $iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe" }
    if (Test-Path $iscc) {
        Step "Inno Setup installer"
        $version = (Select-String -Path (Join-Path $Root "app\__init__.py") -Pattern '__version__ = "(.*)"').Matches[0].Groups[1].Value
        Invoke-Checked $iscc @("/DAppVersion=$version", (Join-Path $Root "packaging\windows\segstudio.iss"))
    } else {
        Write-Host "(Inno Setup's ISCC.exe not found: installer skipped; see packaging\README.md)"
    }
}
Step "done"
