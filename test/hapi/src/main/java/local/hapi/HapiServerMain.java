package local.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.provider.JpaSystemProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.eclipse.jetty.ee10.servlet.ServletContextHandler;
import org.eclipse.jetty.ee10.servlet.ServletHolder;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;

/**
 * Starts Spring (HAPI JPA beans) and serves a RestfulServer on http://HOST:PORT/fhir/* with Jetty 12.
 */
public final class HapiServerMain {

	private static final Logger LOG = LoggerFactory.getLogger(HapiServerMain.class);

	private HapiServerMain() {}

	public static void main(String[] args) throws Exception {
		long t0 = System.nanoTime();
		String host = System.getenv().getOrDefault("HAPI_HOST", "127.0.0.1");
		int port = Integer.parseInt(System.getenv().getOrDefault("HAPI_PORT", "8090"));

		AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext();
		ctx.register(HapiServerConfig.class);
		ctx.refresh();
		ctx.registerShutdownHook();

		FhirContext fhirContext = ctx.getBean(FhirContext.class);
		IFhirSystemDao<?, ?> systemDao = ctx.getBean("mySystemDaoR4", IFhirSystemDao.class);

		RestfulServer server = new RestfulServer(fhirContext);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.registerProviders(ctx.getBean("myResourceProvidersR4", ResourceProviderFactory.class).createProviders());
		server.registerProvider(ctx.getBean("mySystemProviderR4", JpaSystemProvider.class));

		DatabaseBackedPagingProvider paging = ctx.getBean(DatabaseBackedPagingProvider.class);
		server.setPagingProvider(paging);

		server.setServerConformanceProvider(new JpaCapabilityStatementProvider(
				server,
				systemDao,
				ctx.getBean(JpaStorageSettings.class),
				ctx.getBean(ISearchParamRegistry.class),
				ctx.getBean(IValidationSupport.class)));

		Server jetty = new Server();
		ServerConnector connector = new ServerConnector(jetty);
		connector.setHost(host);
		connector.setPort(port);
		jetty.addConnector(connector);

		ServletContextHandler handler = new ServletContextHandler();
		handler.setContextPath("/");
		ServletHolder holder = new ServletHolder("fhir", server);
		holder.setInitOrder(1); // initialise the RestfulServer at startup, not on first request
		handler.addServlet(holder, "/fhir/*");
		jetty.setHandler(handler);
		jetty.setStopAtShutdown(true);
		jetty.start();

		LOG.info("HAPI FHIR JPA server ready at http://{}:{}/fhir in {} ms",
				host, port, (System.nanoTime() - t0) / 1_000_000);
		jetty.join();
	}
}
