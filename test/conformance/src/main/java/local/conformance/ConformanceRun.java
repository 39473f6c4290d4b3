package local.conformance;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.parser.IParser;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.hl7.fhir.common.hapi.validation.support.CachingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;

/**
 * The HL7 reference validator (HAPI FHIR's FhirInstanceValidator, which runs org.hl7.fhir.validation's
 * InstanceValidator) over the corpus of scripts/conformance-corpus.ts, in one JVM. See test/conformance/README.md.
 *
 * <p>Two validator chains share one FhirContext: one with US Core 6.1.0, one with US Core 7.0.0 (a resource or
 * Bundle that claims a US Core profile at |7.0.0 is validated with the 7.0.0 chain, everything else with 6.1.0).
 * Each chain holds: the R4 core definitions (hapi-fhir-validation-resources-r4), the US Core package, the
 * hl7.terminology.r4 package (CodeSystems and ValueSets), the project's own definitions as the app serves them,
 * and the PCO / SDOHCC code systems derived from their IG sources (test/conformance/ig/).
 *
 * <p>Verdict (exit code 1 when it fails): no error in the corpus; every warning either of a terminology kind this
 * machine cannot have (VSAC value sets, LOINC, SNOMED CT content) or listed in accepted-warnings.json with its
 * reason; every negative control rejected with the error it was written for.
 */
public final class ConformanceRun {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The kinds of warning that only terminology this machine cannot have explains. */
  enum Unavailable {
    VSAC("VSAC value set (cts.nlm.nih.gov)", Pattern.compile("https?://cts\\.nlm\\.nih\\.gov[^\\s'\"()\\],]*")),
    LOINC("LOINC content (http://loinc.org)", Pattern.compile("https?://loinc\\.org[^\\s'\"()\\],]*")),
    SNOMED("SNOMED CT content (http://snomed.info/sct)", Pattern.compile("https?://snomed\\.info/sct[^\\s'\"()\\],]*"));

    final String label;
    final Pattern pattern;

    Unavailable(String label, Pattern pattern) {
      this.label = label;
      this.pattern = pattern;
    }
  }

  record Accepted(String messageId, Pattern match, String reason) {}

  record Finding(
      String severity, String source, String label, String pass, String resource, String path, String messageId,
      String message) {}

  private final FhirContext ctx = FhirContext.forR4Cached();
  private final Map<String, FhirValidator> validators = new LinkedHashMap<>();
  private final Map<String, IValidationSupport> supports = new LinkedHashMap<>();
  private final List<Finding> errors = new ArrayList<>();
  private final Map<String, List<Finding>> warningKinds = new TreeMap<>();
  private final Map<String, Integer> informationCount = new TreeMap<>();
  private final Map<String, Integer> validatedPerTypeAndSource = new TreeMap<>();
  private final Map<String, Integer> validatedPerSource = new TreeMap<>();
  private int validations = 0;

  public static void main(String[] args) throws Exception {
    // Everything the validator needs is loaded from local packages; it must not reach out to package registries or
    // terminology servers (it tries packages.fhir.org for hl7.fhir.r4.core otherwise): no outbound traffic.
    org.hl7.fhir.utilities.http.ManagedWebAccess.setAccessPolicy(
        org.hl7.fhir.utilities.http.ManagedWebAccess.WebAccessPolicy.PROHIBITED);
    Map<String, String> opts = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) opts.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    System.exit(new ConformanceRun().run(opts));
  }

  int run(Map<String, String> opts) throws Exception {
    long t0 = System.nanoTime();
    if (opts.containsKey("write-snapshots")) writeSnapshots = Path.of(opts.get("write-snapshots"));
    Path packages = Path.of(opts.getOrDefault("packages", "test/conformance/packages"));
    Path ig = Path.of(opts.getOrDefault("ig", "test/conformance/ig"));
    Path definitions = Path.of(opts.getOrDefault("definitions", "test-output/conformance/definitions"));
    Path corpus = Path.of(opts.getOrDefault("corpus", "test-output/conformance/corpus.ndjson"));
    Path controls = Path.of(opts.getOrDefault("controls", "test/conformance/controls"));
    Path acceptedFile = Path.of(opts.getOrDefault("accepted", "test/conformance/accepted-warnings.json"));
    Path reportFile = Path.of(opts.getOrDefault("report", "test-output/conformance/report.json"));
    Path errorsFile = Path.of(opts.getOrDefault("errors", "test-output/conformance/errors.tsv"));
    int examplesPerKind = Integer.parseInt(opts.getOrDefault("examples", "3"));

    // Definitions every chain shares.
    IParser parser = ctx.newJsonParser();
    List<IBaseResource> terminology = readPackage(parser, packages.resolve("hl7.terminology.r4-7.0.1.tgz"), false);
    List<IBaseResource> own = readFolder(parser, definitions);
    List<IBaseResource> igCodeSystems = readFolder(parser, ig);
    if (own.isEmpty()) throw new IllegalStateException("no project definitions in " + definitions);
    System.out.printf(
        "loaded: hl7.terminology.r4 7.0.1 (%d CodeSystems/ValueSets), %d project definitions, %d PCO/SDOHCC code systems%n",
        terminology.size(), own.size(), igCodeSystems.size());
    String officialProfile = null;
    for (String version : List.of("6.1.0", "7.0.0")) {
      List<IBaseResource> usCore =
          readPackage(parser, packages.resolve("hl7.fhir.us.core-" + version + ".tgz"), true);
      for (IBaseResource r : usCore)
        if (officialProfile == null && r instanceof org.hl7.fhir.r4.model.StructureDefinition sd && "us-core-race".equals(sd.getIdPart()))
          officialProfile = parser.encodeResourceToString(sd);
      PrePopulatedValidationSupport pre = new PrePopulatedValidationSupport(ctx);
      for (IBaseResource r : terminology) pre.addResource(r);
      for (IBaseResource r : usCore) pre.addResource(r);
      for (IBaseResource r : igCodeSystems) pre.addResource(r);
      for (IBaseResource r : own) pre.addResource(r);
      ValidationSupportChain chain =
          new ValidationSupportChain(
              new DefaultProfileValidationSupport(ctx),
              pre,
              new OwnResources(ctx, own),
              new CommonCodeSystemsTerminologyService(ctx),
              new InMemoryTerminologyServerValidationSupport(ctx),
              new SnapshotGeneratingValidationSupport(ctx));
      IValidationSupport support = new CachingValidationSupport(chain);
      FhirInstanceValidator module = new FhirInstanceValidator(support);
      module.setErrorForUnknownProfiles(true);
      module.setAnyExtensionsAllowed(true);
      FhirValidator validator = ctx.newValidator();
      validator.setValidateAgainstStandardSchema(false);
      validator.setValidateAgainstStandardSchematron(false);
      validator.registerValidatorModule(module);
      validators.put(version, validator);
      supports.put(version, support);
      System.out.printf("US Core %s: %d resources loaded%n", version, usCore.size());
    }
    List<Accepted> accepted = readAccepted(acceptedFile);

    // Warm-up (snapshots, caches) so that timings below are the corpus's.
    for (FhirValidator v : validators.values())
      v.validateWithResult("{\"resourceType\":\"Patient\",\"id\":\"warm\"}");
    // The project's StructureDefinitions: their snapshots, generated from their differentials by the chain (as every
    // validation of one of their extensions does), printed, and compared with the snapshots they are served with
    // (schemas/fhir, written by --write-snapshots). The validator's own check of an extension's StructureDefinition
    // needs the HL7 core package hl7.fhir.r4.core, which it tries to download; no registry reached here has it. That
    // error is set aside (counted, printed) only when US Core's own extension us-core-race, unchanged, gets it too in
    // this run, and only for a project definition whose snapshot the chain generated and which is served with it.
    IValidationSupport chain61 = supports.get("6.1.0");
    for (IBaseResource r : own) {
      if (!(r instanceof org.hl7.fhir.r4.model.StructureDefinition sd)) continue;
      org.hl7.fhir.r4.model.StructureDefinition input = sd.copy();
      input.setSnapshot(null);
      IBaseResource generated =
          chain61.generateSnapshot(
              new ca.uhn.fhir.context.support.ValidationSupportContext(chain61), input, input.getUrl(), null, input.getName());
      int elements =
          generated instanceof org.hl7.fhir.r4.model.StructureDefinition g ? g.getSnapshot().getElement().size() : 0;
      if (elements > 0) snapshotsGenerated.put(sd.getUrl(), elements);
      System.out.printf("snapshot of %s from its differential: %d elements%n", sd.getUrl(), elements);
      // The definitions are served with their snapshot (schemas/fhir, written by --write-snapshots): it must be the
      // one the differential gives, element by element.
      String servedIds = snapshotIds(sd);
      String generatedIds =
          generated instanceof org.hl7.fhir.r4.model.StructureDefinition g2 ? snapshotIds(g2) : "";
      if (writeSnapshots != null && generated instanceof org.hl7.fhir.r4.model.StructureDefinition g3) {
        org.hl7.fhir.r4.model.StructureDefinition withSnapshot = sd.copy();
        withSnapshot.setSnapshot(g3.getSnapshot());
        Path file = writeSnapshots.resolve("StructureDefinition-" + sd.getIdPart() + ".json");
        Files.writeString(file, ctx.newJsonParser().setPrettyPrint(true).encodeResourceToString(withSnapshot) + "\n");
        System.out.printf("  wrote %s%n", file);
      } else if (!servedIds.equals(generatedIds)) {
        staleSnapshots.add(sd.getUrl());
        System.out.printf("  STALE: the served snapshot of %s is not the one its differential gives%n", sd.getUrl());
      }
    }
    if (officialProfile != null)
      for (SingleValidationMessage m : validators.get("6.1.0").validateWithResult(officialProfile).getMessages())
        if (isError(m.getSeverity()) && CORE_PACKAGE_MISSING.matcher(String.valueOf(m.getMessage())).find())
          corePackageMissingForOfficial = true;
    System.out.printf(
        "the validator's own check of an extension definition needs hl7.fhir.r4.core: %s%n",
        corePackageMissingForOfficial
            ? "it fails for US Core's us-core-race too (no such package here)"
            : "it works for US Core's us-core-race");
    if (writeSnapshots != null) return 0;
    long tLoaded = System.nanoTime();
    System.out.printf("validator ready in %.1f s%n", (tLoaded - t0) / 1e9);

    // The corpus: every item, and every entry of a Bundle alone, on a pool of threads (one JVM, shared caches).
    List<Task> tasks = new ArrayList<>();
    int items = 0;
    try (BufferedReader in = Files.newBufferedReader(corpus, StandardCharsets.UTF_8)) {
      String line;
      while ((line = in.readLine()) != null) {
        if (line.isBlank()) continue;
        JsonNode item = JSON.readTree(line);
        items++;
        addTasks(tasks, item.path("source").asText(), item.path("label").asText(), item.path("resource"));
      }
    }
    if (items == 0) throw new IllegalStateException("empty corpus: " + corpus);
    int threads = Integer.parseInt(opts.getOrDefault("threads", String.valueOf(Runtime.getRuntime().availableProcessors())));
    java.util.concurrent.ForkJoinPool pool = new java.util.concurrent.ForkJoinPool(Math.max(1, threads));
    try {
      pool.submit(() -> tasks.parallelStream().forEach(this::validate)).get();
    } finally {
      pool.shutdown();
    }
    // Set aside (counted, printed) the one harness limit, only where it is shown to be one (above).
    int setAside = 0;
    for (java.util.Iterator<Finding> it = errors.iterator(); it.hasNext(); ) {
      Finding f = it.next();
      if (corePackageMissingForOfficial
          && "definition".equals(f.source())
          && "ERROR_GENERATING_SNAPSHOT".equals(f.messageId())
          && CORE_PACKAGE_MISSING.matcher(String.valueOf(f.message())).find()
          && snapshotsGenerated.keySet().stream().anyMatch(u -> u.endsWith("/" + f.resource()))
          && staleSnapshots.isEmpty()) {
        it.remove();
        setAside++;
      }
    }
    final int coreCheckSetAside = setAside;
    errors.sort(
        java.util.Comparator.comparing((Finding f) -> String.valueOf(f.source()))
            .thenComparing(f -> String.valueOf(f.label()))
            .thenComparing(f -> String.valueOf(f.path())));
    long tCorpus = System.nanoTime();

    // Negative controls: each must be rejected with the error it was written for.
    List<String> controlLines = new ArrayList<>();
    int controlsTotal = 0;
    int controlsRejected = 0;
    try (Stream<Path> files = Files.list(controls)) {
      for (Path file : files.filter(p -> p.toString().endsWith(".json")).sorted().toList()) {
        JsonNode control = JSON.readTree(file.toFile());
        controlsTotal++;
        String version = control.path("usCore").asText("6.1.0");
        Pattern expect = Pattern.compile(control.path("expect").asText(), Pattern.DOTALL);
        ValidationResult result = validators.get(version).validateWithResult(control.path("resource").toString());
        List<SingleValidationMessage> errs =
            result.getMessages().stream().filter(m -> isError(m.getSeverity())).toList();
        SingleValidationMessage hit =
            errs.stream()
                .filter(m -> expect.matcher(m.getLocationString() + " " + m.getMessage()).find())
                .findFirst()
                .orElse(null);
        boolean rejected = hit != null;
        if (rejected) controlsRejected++;
        controlLines.add(
            String.format(
                "  %s %s (US Core %s): %s",
                rejected ? "rejected" : "NOT REJECTED",
                file.getFileName(),
                version,
                rejected
                    ? hit.getLocationString() + ": " + oneLine(hit.getMessage())
                    : errs.isEmpty()
                        ? "no error at all"
                        : "errors, but none matching /" + expect + "/: " + oneLine(errs.get(0).getMessage())));
      }
    }
    long tEnd = System.nanoTime();

    // Warnings: which kinds are allowed.
    List<String> failingWarningKinds = new ArrayList<>();
    Map<String, Integer> unavailableCounts = new TreeMap<>();
    Map<String, Integer> acceptedCounts = new TreeMap<>();
    for (Map.Entry<String, List<Finding>> kind : warningKinds.entrySet()) {
      Finding example = kind.getValue().get(0);
      Unavailable unavailable = unavailableTerminology(example.messageId, example.message);
      if (unavailable != null) {
        unavailableCounts.merge(kind.getKey(), kind.getValue().size(), Integer::sum);
        continue;
      }
      Accepted a =
          accepted.stream()
              .filter(
                  x ->
                      (x.messageId == null || x.messageId.equals(example.messageId))
                          && (x.match == null || x.match.matcher(example.message).find()))
              .findFirst()
              .orElse(null);
      if (a != null) acceptedCounts.merge(kind.getKey() + " — accepted: " + a.reason, kind.getValue().size(), Integer::sum);
      else failingWarningKinds.add(kind.getKey());
    }

    // Report.
    PrintStream out = System.out;
    out.println();
    out.println("== resources validated (per resource type and source; a Bundle counts once whole and each entry alone)");
    validatedPerTypeAndSource.forEach((k, v) -> out.printf("  %-60s %6d%n", k, v));
    out.println("  per source:");
    validatedPerSource.forEach((k, v) -> out.printf("    %-58s %6d%n", k, v));
    out.printf("  total validations: %d (from %d corpus items)%n", validations, items);

    out.println();
    Map<String, List<Finding>> errorKinds = new TreeMap<>();
    for (Finding f : errors) errorKinds.computeIfAbsent(kindOf(f.messageId, f.message), k -> new ArrayList<>()).add(f);
    out.printf("== errors: %d, of %d kinds (all of them in %s)%n", errors.size(), errorKinds.size(), errorsFile);
    out.printf(
        "  set aside: %d ERROR_GENERATING_SNAPSHOT on the project's extension definitions (the validator needs hl7.fhir.r4.core, which no registry here has; US Core's us-core-race gets it too; snapshots generated from the differentials and served: %s)%n",
        coreCheckSetAside, new TreeMap<>(snapshotsGenerated));
    for (Map.Entry<String, List<Finding>> kind : errorKinds.entrySet()) {
      out.printf("  [%d] %s%n", kind.getValue().size(), kind.getKey());
      kind.getValue().stream()
          .limit(examplesPerKind)
          .forEach(
              f ->
                  out.printf(
                      "      %s | %s | %s | %s | %s%n",
                      f.source, f.label, f.resource + " (" + f.pass + ")", f.path, oneLine(f.message)));
    }

    out.println();
    int warningTotal = warningKinds.values().stream().mapToInt(List::size).sum();
    out.printf("== warnings: %d, of %d kinds%n", warningTotal, warningKinds.size());
    out.println("  terminology this machine cannot have (allowed):");
    if (unavailableCounts.isEmpty()) out.println("    none");
    unavailableCounts.forEach((k, v) -> out.printf("    [%d] %s%n", v, k));
    out.println("  listed in accepted-warnings.json (allowed):");
    if (acceptedCounts.isEmpty()) out.println("    none");
    acceptedCounts.forEach((k, v) -> out.printf("    [%d] %s%n", v, k));
    out.println("  other kinds (each fails the run):");
    if (failingWarningKinds.isEmpty()) out.println("    none");
    for (String k : failingWarningKinds) {
      List<Finding> list = warningKinds.get(k);
      out.printf("    [%d] %s%n", list.size(), k);
      list.stream()
          .limit(examplesPerKind)
          .forEach(
              f ->
                  out.printf(
                      "        %s | %s | %s | %s | %s%n",
                      f.source, f.label, f.resource + " (" + f.pass + ")", f.path, oneLine(f.message)));
    }
    out.printf("  information messages: %d%n", informationCount.values().stream().mapToInt(Integer::intValue).sum());

    out.println();
    out.printf("== negative controls rejected: %d of %d%n", controlsRejected, controlsTotal);
    controlLines.forEach(out::println);

    out.println();
    out.printf(
        "time: definitions and validator %.1f s, corpus %.1f s, controls %.1f s%n",
        (tLoaded - t0) / 1e9, (tCorpus - tLoaded) / 1e9, (tEnd - tCorpus) / 1e9);

    writeErrors(errorsFile);
    writeReport(reportFile, errorKinds, unavailableCounts, acceptedCounts, failingWarningKinds, controlsRejected, controlsTotal);

    List<String> failures = new ArrayList<>();
    if (!errors.isEmpty()) failures.add(errors.size() + " errors");
    if (!failingWarningKinds.isEmpty())
      failures.add(failingWarningKinds.size() + " warning kinds neither terminology-only nor accepted");
    if (!staleSnapshots.isEmpty())
      failures.add("stale snapshots (npm run conformance:snapshots): " + String.join(", ", staleSnapshots));
    if (controlsTotal < 6) failures.add("fewer than 6 negative controls (" + controlsTotal + ")");
    if (controlsRejected < controlsTotal)
      failures.add((controlsTotal - controlsRejected) + " negative controls not rejected");
    out.println();
    if (failures.isEmpty()) {
      out.println("conformance: PASS (0 errors, only allowed warnings, all negative controls rejected)");
      return 0;
    }
    out.println("conformance: FAIL: " + String.join("; ", failures));
    return 1;
  }

  private Path writeSnapshots = null;
  private final List<String> staleSnapshots = new ArrayList<>();

  private static String snapshotIds(org.hl7.fhir.r4.model.StructureDefinition sd) {
    StringBuilder ids = new StringBuilder();
    for (org.hl7.fhir.r4.model.ElementDefinition e : sd.getSnapshot().getElement())
      ids.append(e.getId()).append(' ').append(e.getMin()).append("..").append(e.getMax()).append('\n');
    return ids.toString();
  }

  private static final Pattern CORE_PACKAGE_MISSING =
      Pattern.compile("Unable to resolve package id hl7\\.fhir\\.r4\\.core#");
  private final Map<String, Integer> snapshotsGenerated = new java.util.concurrent.ConcurrentHashMap<>();
  private boolean corePackageMissingForOfficial = false;

  record Task(String source, String label, JsonNode resource, String pass, String type) {}

  private void addTasks(List<Task> tasks, String source, String label, JsonNode resource) {
    String type = resource.path("resourceType").asText();
    if ("Bundle".equals(type)) {
      tasks.add(new Task(source, label, resource, "bundle whole", "Bundle(" + resource.path("type").asText() + ")"));
      int i = 0;
      for (JsonNode entry : resource.path("entry")) {
        JsonNode r = entry.get("resource");
        if (r != null) tasks.add(new Task(source, label + " entry[" + i + "]", r, "alone", r.path("resourceType").asText()));
        i++;
      }
    } else {
      tasks.add(new Task(source, label, resource, "alone", type));
    }
  }

  private void validate(Task t) {
    String text = t.resource.toString();
    String version = text.contains("|7.0.0") && text.contains("/us/core/StructureDefinition/") ? "7.0.0" : "6.1.0";
    ValidationResult result = validators.get(version).validateWithResult(text);
    String name =
        t.resource.path("resourceType").asText() + (t.resource.has("id") ? "/" + t.resource.path("id").asText() : "");
    List<Finding> found = new ArrayList<>();
    for (SingleValidationMessage m : result.getMessages())
      found.add(
          new Finding(
              m.getSeverity().name(), t.source, t.label, t.pass + ", US Core " + version, name, m.getLocationString(),
              m.getMessageId(), m.getMessage()));
    List<String> kinds = new ArrayList<>();
    for (Finding f : found) kinds.add("WARNING".equals(f.severity) ? warningKindOf(f.messageId, f.message) : null);
    synchronized (this) {
      validations++;
      validatedPerTypeAndSource.merge(t.type + " / " + t.source + " (" + t.pass + ")", 1, Integer::sum);
      validatedPerSource.merge(t.source, 1, Integer::sum);
      for (int i = 0; i < found.size(); i++) {
        Finding f = found.get(i);
        if ("ERROR".equals(f.severity) || "FATAL".equals(f.severity)) errors.add(f);
        else if (kinds.get(i) != null) warningKinds.computeIfAbsent(kinds.get(i), k -> new ArrayList<>()).add(f);
        else informationCount.merge(String.valueOf(f.messageId), 1, Integer::sum);
      }
    }
  }

  private static boolean isError(ResultSeverityEnum s) {
    return s == ResultSeverityEnum.ERROR || s == ResultSeverityEnum.FATAL;
  }

  private static final Pattern URL = Pattern.compile("https?://[^\\s'\"()\\],]+");

  /**
   * A terminology warning whose only cause is content this machine cannot have: it names a VSAC value set, LOINC
   * or SNOMED CT, and any other canonical it names is a ValueSet whose every include is LOINC, SNOMED CT or a VSAC
   * value set (so its membership cannot be decided here either).
   */
  Unavailable unavailableTerminology(String messageId, String message) {
    Unavailable found = null;
    for (Unavailable u : Unavailable.values()) if (u.pattern.matcher(message).find() && found == null) found = u;
    if (found == null) return null;
    String rest = message;
    for (Unavailable v : Unavailable.values()) rest = v.pattern.matcher(rest).replaceAll("");
    java.util.regex.Matcher m = URL.matcher(rest);
    while (m.find()) {
      String url = m.group();
      if (url.startsWith("http://www.w3.org")) continue;
      if (!onlyUnavailableContent(url)) return null;
    }
    return found;
  }

  private final Map<String, Boolean> unavailableValueSets = new java.util.concurrent.ConcurrentHashMap<>();

  private boolean onlyUnavailableContent(String url) {
    return unavailableValueSets.computeIfAbsent(
        url,
        u -> {
          IBaseResource r = null;
          for (IValidationSupport s : supports.values()) {
            r = s.fetchValueSet(u);
            if (r == null && u.contains("|")) r = s.fetchValueSet(u.substring(0, u.indexOf('|')));
            if (r != null) break;
          }
          if (!(r instanceof org.hl7.fhir.r4.model.ValueSet vs) || !vs.hasCompose()) return false;
          for (org.hl7.fhir.r4.model.ValueSet.ConceptSetComponent inc : vs.getCompose().getInclude()) {
            boolean ok = !inc.hasSystem() || unavailableText(inc.getSystem());
            for (org.hl7.fhir.r4.model.CanonicalType c : inc.getValueSet()) ok &= unavailableText(c.getValue());
            if (!ok) return false;
          }
          return true;
        });
  }

  private static boolean unavailableText(String url) {
    for (Unavailable u : Unavailable.values()) if (u.pattern.matcher(url).matches()) return true;
    return false;
  }

  /**
   * A kind: the validator's message id and the canonical URLs (with #code) the message names; without a message id,
   * the message with quoted values and numbers masked.
   */
  static String kindOf(String messageId, String message) {
    String text = oneLine(message);
    List<String> urls = new ArrayList<>();
    java.util.regex.Matcher m = URL.matcher(text);
    while (m.find()) if (!urls.contains(m.group())) urls.add(m.group().replaceAll("urn:uuid:[0-9a-f-]+", "urn:uuid:…"));
    if (messageId != null && !messageId.isBlank())
      return messageId + (urls.isEmpty() ? "" : " " + String.join(" ", urls));
    String masked = text.replaceAll("'[^']*'", "'…'").replaceAll("\\b\\d+\\b", "N");
    return "?: " + (masked.length() > 200 ? masked.substring(0, 200) + "…" : masked);
  }

  String warningKindOf(String messageId, String message) {
    Unavailable u = unavailableTerminology(messageId, message);
    return (u == null ? "" : "[" + u.label + "] ") + kindOf(messageId, message);
  }

  static String oneLine(String s) {
    return s == null ? "" : s.replaceAll("\\s+", " ").trim();
  }

  private List<IBaseResource> readPackage(IParser parser, Path tgz, boolean structureDefinitionsToo)
      throws IOException {
    List<IBaseResource> out = new ArrayList<>();
    try (InputStream raw = new BufferedInputStream(Files.newInputStream(tgz));
        TarArchiveInputStream tar = new TarArchiveInputStream(new GZIPInputStream(raw))) {
      TarArchiveEntry entry;
      while ((entry = tar.getNextEntry()) != null) {
        String name = entry.getName();
        if (entry.isDirectory() || !name.startsWith("package/") || !name.endsWith(".json")) continue;
        String file = name.substring("package/".length());
        if (file.contains("/") || file.startsWith(".") || file.equals("package.json")) continue;
        boolean wanted =
            file.startsWith("CodeSystem-")
                || file.startsWith("ValueSet-")
                || (structureDefinitionsToo && file.startsWith("StructureDefinition-"));
        if (!wanted) continue;
        String text = new String(tar.readAllBytes(), StandardCharsets.UTF_8);
        out.add(parser.parseResource(text));
      }
    }
    if (out.isEmpty()) throw new IllegalStateException("nothing loaded from " + tgz);
    return out;
  }

  private List<IBaseResource> readFolder(IParser parser, Path folder) throws IOException {
    List<IBaseResource> out = new ArrayList<>();
    try (Stream<Path> files = Files.list(folder)) {
      for (Path file : files.filter(p -> p.toString().endsWith(".json")).sorted().toList())
        out.add(parser.parseResource(Files.readString(file)));
    }
    return out;
  }

  private static List<Accepted> readAccepted(Path file) throws IOException {
    List<Accepted> out = new ArrayList<>();
    if (!Files.exists(file)) return out;
    JsonNode root = JSON.readTree(file.toFile());
    for (JsonNode a : root.path("accepted")) {
      String reason = a.path("reason").asText("");
      if (reason.isBlank()) throw new IllegalStateException("accepted warning without a reason: " + a);
      out.add(
          new Accepted(
              a.hasNonNull("messageId") ? a.get("messageId").asText() : null,
              a.hasNonNull("match") ? Pattern.compile(a.get("match").asText()) : null,
              reason));
    }
    return out;
  }

  private void writeErrors(Path file) throws IOException {
    Files.createDirectories(file.getParent());
    StringBuilder sb = new StringBuilder("source\tlabel\tpass\tresource\tpath\tmessageId\tmessage\n");
    for (Finding f : errors)
      sb.append(String.join("\t", f.source, f.label, f.pass, f.resource, f.path, String.valueOf(f.messageId), oneLine(f.message)))
          .append('\n');
    Files.writeString(file, sb.toString());
  }

  private void writeReport(
      Path file, Map<String, List<Finding>> errorKinds, Map<String, Integer> unavailable,
      Map<String, Integer> acceptedCounts, List<String> failingWarningKinds, int controlsRejected, int controlsTotal)
      throws IOException {
    ObjectNode root = JSON.createObjectNode();
    root.put("validations", validations);
    ObjectNode per = root.putObject("validatedPerTypeAndSource");
    validatedPerTypeAndSource.forEach(per::put);
    root.put("errors", errors.size());
    ArrayNode kinds = root.putArray("errorKinds");
    errorKinds.forEach(
        (k, v) -> {
          ObjectNode n = kinds.addObject();
          n.put("kind", k);
          n.put("count", v.size());
          Finding f = v.get(0);
          n.put("exampleSource", f.source);
          n.put("exampleLabel", f.label);
          n.put("exampleResource", f.resource);
          n.put("examplePass", f.pass);
          n.put("examplePath", f.path);
          n.put("exampleMessage", oneLine(f.message));
        });
    ObjectNode w = root.putObject("warnings");
    ObjectNode u = w.putObject("terminologyUnavailable");
    unavailable.forEach(u::put);
    ObjectNode a = w.putObject("accepted");
    acceptedCounts.forEach(a::put);
    ArrayNode failing = w.putArray("failing");
    for (String k : failingWarningKinds) {
      ObjectNode n = failing.addObject();
      Finding f = warningKinds.get(k).get(0);
      n.put("kind", k);
      n.put("count", warningKinds.get(k).size());
      n.put("exampleLabel", f.source + " | " + f.label);
      n.put("exampleResource", f.resource);
      n.put("examplePath", f.path);
      n.put("exampleMessage", oneLine(f.message));
    }
    root.put("controlsRejected", controlsRejected);
    root.put("controlsTotal", controlsTotal);
    Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
  }

  static String lower(String s) {
    return s.toLowerCase(Locale.ROOT);
  }

  /**
   * The project's own definitions of types PrePopulatedValidationSupport does not serve (its addResource keeps only
   * StructureDefinitions, CodeSystems, ValueSets and SearchParameters): the Measures, so that the validator resolves
   * each MeasureReport's measure (MeasureReport.measure, a canonical with |version) and checks the report against it.
   */
  static final class OwnResources implements IValidationSupport {
    private final FhirContext context;
    private final Map<String, IBaseResource> byUrl = new LinkedHashMap<>();

    OwnResources(FhirContext context, List<IBaseResource> own) {
      this.context = context;
      for (IBaseResource r : own) {
        if (r instanceof org.hl7.fhir.r4.model.Measure measure && measure.hasUrl()) {
          byUrl.put(measure.getUrl(), measure);
          if (measure.hasVersion()) byUrl.put(measure.getUrl() + "|" + measure.getVersion(), measure);
        }
      }
    }

    @Override
    public FhirContext getFhirContext() {
      return context;
    }

    @Override
    public <T extends IBaseResource> T fetchResource(Class<T> type, String uri) {
      IBaseResource found = uri == null ? null : byUrl.get(uri);
      if (found == null || (type != null && !type.isInstance(found))) return null;
      return type == null ? null : type.cast(found);
    }
  }
}
